/* cmds.h: every subcommand's entry point (see the table in moetrace.c). */
#ifndef MOETRACE_CMDS_H
#define MOETRACE_CMDS_H

int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_balance(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_replays(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_place(int argc, char **argv);
int cmd_sql(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_push(int argc, char **argv);

#endif
