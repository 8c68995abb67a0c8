/*
 * cmd_complete.c - `credsync [-c FILE] __complete WHAT [ARG]`: words for the shell
 * completion scripts (contrib/completion), one per line on stdout.  Hidden: not in the help.
 *
 *   instances         the instance ids of the config
 *   groups [ID]       the groups listed in the config (of instance ID only, when given)
 *   regions           the regions credsync knows (for init --region)
 *
 * It reads the config with the real loader, so it finds the same file the command being
 * completed will (-c, $CREDSYNC_CONFIG, the search order), and never touches the network:
 * `groups: all` contributes nothing.  A missing or broken config prints nothing and exits 0,
 * because a completion must never spill errors into the user's command line.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "regions.h"

int cmd_complete(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	struct config *cfg = NULL;
	struct cs_error ignored = { CS_ERR_NONE, "" };
	const char *what = argc > 1 ? argv[1] : "";
	const char *only = argc > 2 ? argv[2] : NULL;
	size_t i, k;

	if (!strcmp(what, "regions")) {
		for (i = 0; regions_known[i]; i++)
			puts(regions_known[i]);
		return CMD_OK;
	}
	if (strcmp(what, "instances") && strcmp(what, "groups"))
		return CMD_OK;
	if (cli_load_config(g, &cfg, &ignored) < 0)
		return CMD_OK;
	for (i = 0; i < cfg->ninstances; i++) {
		const struct cfg_instance *inst = &cfg->instances[i];

		if (!strcmp(what, "instances")) {
			puts(inst->id);
			continue;
		}
		if (only && *only && strcmp(only, inst->id))
			continue;
		for (k = 0; k < inst->ngroups; k++)
			puts(inst->groups[k]);
	}
	config_free(cfg);
	return CMD_OK;
}
