/* main.c - placeholder until the command table lands. */
#include <stdio.h>

int main(void)
{
	puts("credsync " CREDSYNC_VERSION);
	return 0;
}
