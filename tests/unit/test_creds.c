/* The credential chain without the network: masking, descriptions, profile types and modes,
 * their errors, and the chain's message listing every source.  The metadata provider is off
 * (ALIBABA_CLOUD_ECS_METADATA_DISABLED) so nothing here ever leaves the process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "test.h"

static char home[64];

static void write_file(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", home, rel);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

static void test_mask_and_describe(void)
{
	struct creds c = { .access_key_id = "TESTexampleKeyIdNotReal9", .access_key_secret = "s" };
	char out[128];

	creds_mask_id("TESTexampleKeyIdNotReal9", out, sizeof(out));
	CHECK_STR(out, "TEST****eal9");
	creds_mask_id("short", out, sizeof(out));
	CHECK_STR(out, "****");
	creds_describe(&c, out, sizeof(out));
	CHECK_STR(out, "access_key TEST****eal9");
	c.security_token = "tok";
	creds_describe(&c, out, sizeof(out));
	CHECK_STR(out, "sts TEST****eal9");
}

static void test_profiles(void)
{
	struct creds c;
	struct cs_error err = { 0 };

	write_file(".alibabacloud/credentials",
		   "[default]\ntype = access_key\naccess_key_id = TESTexampleKeyIdNotReal9\n"
		   "access_key_secret = sekret\n\n[odd]\ntype = cloud_sso\n\n"
		   "[rolebad]\ntype = ram_role_arn\naccess_key_id = a\naccess_key_secret = b\n"
		   "role_arn = acs:ram::1:role/r\nrole_session_expiration = 60\n");
	CHECK(creds_resolve(&c, NULL, &err) == 0);
	CHECK_STR(c.identity, "access_key TEST****eal9");
	CHECK(c.expiration == 0 && c.prov == NULL);
	CHECK(creds_fresh(&c, 0, &err) == 0);   /* static: nothing to renew */
	creds_release(&c);

	cs_error_clear(&err);
	CHECK(creds_resolve(&c, "odd", &err) == -1 && err.kind == CS_ERR_CREDENTIALS);
	CHECK_CONTAINS(err.msg, "profile 'odd'");
	CHECK_CONTAINS(err.msg, "has type 'cloud_sso'");
	CHECK_CONTAINS(err.msg, "/.alibabacloud/credentials");

	cs_error_clear(&err);
	CHECK(creds_resolve(&c, "rolebad", &err) == -1);
	CHECK_CONTAINS(err.msg, "role_session_expiration must be 900..43200");

	write_file(".aliyun/config.json",
		   "{\"current\": \"a\", \"profiles\": ["
		   "{\"name\": \"a\", \"mode\": \"ChainableRamRoleArn\", \"source_profile\": \"b\","
		   " \"ram_role_arn\": \"acs:ram::1:role/r\"},"
		   "{\"name\": \"b\", \"mode\": \"ChainableRamRoleArn\", \"source_profile\": \"a\","
		   " \"ram_role_arn\": \"acs:ram::1:role/r\"},"
		   "{\"name\": \"x\", \"mode\": \"External\"}]}");
	cs_error_clear(&err);
	CHECK(creds_resolve(&c, NULL, &err) == -1);
	CHECK_CONTAINS(err.msg, "a loop?");
	cs_error_clear(&err);
	CHECK(creds_resolve(&c, "x", &err) == -1);
	CHECK_CONTAINS(err.msg, "has mode 'External'");
}

static void test_chain_message(void)
{
	struct creds c;
	struct cs_error err = { 0 };
	char path[256];

	snprintf(path, sizeof(path), "%s/.aliyun/config.json", home);
	unlink(path);
	snprintf(path, sizeof(path), "%s/.alibabacloud/credentials", home);
	unlink(path);
	setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r", 1);  /* only one of three */
	CHECK(creds_resolve(&c, NULL, &err) == -1 && err.kind == CS_ERR_CREDENTIALS);
	CHECK_CONTAINS(err.msg, "no credentials for profile 'default'; tried environment: ");
	CHECK_CONTAINS(err.msg, "OIDC: not all of ALIBABA_CLOUD_ROLE_ARN");
	CHECK_CONTAINS(err.msg, "ECS RAM role: ALIBABA_CLOUD_ECS_METADATA_DISABLED=true");
	CHECK_CONTAINS(err.msg, "credentials URI: ALIBABA_CLOUD_CREDENTIALS_URI is not set");
	unsetenv("ALIBABA_CLOUD_ROLE_ARN");
	/* plain http to anything but loopback is refused before any packet */
	setenv("ALIBABA_CLOUD_CREDENTIALS_URI", "http://192.0.2.7/creds", 1);
	cs_error_clear(&err);
	CHECK(creds_resolve(&c, NULL, &err) == -1);
	CHECK_CONTAINS(err.msg, "plain http is allowed only to loopback");
	unsetenv("ALIBABA_CLOUD_CREDENTIALS_URI");
}

int main(void)
{
	char dir[256];
	static const char *const vars[] = {
		"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_ACCESS_KEY",
		"ALICLOUD_SECRET_KEY", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CREDENTIALS_FILE",
		"ALIBABA_CLOUD_CONFIG_FILE", "ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
		"ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_CREDENTIALS_URI",
		"ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "CREDSYNC_METADATA_ENDPOINT",
	};
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	/* the network rule: the metadata provider stays off */
	setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true", 1);
	snprintf(home, sizeof(home), "/tmp/credsync-test-creds-XXXXXX");
	CHECK(mkdtemp(home) != NULL);
	setenv("HOME", home, 1);
	snprintf(dir, sizeof(dir), "%s/.alibabacloud", home);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/.aliyun", home);
	mkdir(dir, 0700);
	test_mask_and_describe();
	test_profiles();
	test_chain_message();
	snprintf(dir, sizeof(dir), "%s/.alibabacloud", home);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/.aliyun", home);
	rmdir(dir);
	rmdir(home);
	TEST_DONE();
}
