/* commands.h — the subcommands of the `circd` program. Each takes the arguments after `circd` (argv[0] is the
 * subcommand's name) and returns the process exit code: 0 success, 2 bad input or an unreadable/unwritable path (with a
 * message on stderr), 1 for other failures. MPI is initialised by main.c before any of them runs. */
#ifndef CIRCD_CLI_COMMANDS_H
#define CIRCD_CLI_COMMANDS_H

int cmd_forward(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_atp(int argc, char **argv);
int cmd_faithfulness(int argc, char **argv);

/* Prints "circd <command>: <err_msg()>" to stderr and maps a CIRCD_E* code to the exit code. */
int cli_fail(const char *command, int code);
/* The exit code of a CIRCD_E* code, without printing (ranks other than 0 of a failed MPI run). */
int cli_exit_code(int code);
/* --name values (results group names): 1-60 characters of [A-Za-z0-9._-], or NULL; CIRCD_EINPUT otherwise. */
int cli_check_name(const char *name);

#endif
