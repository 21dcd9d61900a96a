/* The tapegrad program's commands; each returns the process exit status. */
#ifndef TG_CLI_H
#define TG_CLI_H

int tg_cli_grad(int argc, char **argv);  /* grad.c: tapegrad grad EXPR x=... */
int tg_cli_check(int argc, char **argv); /* grad.c: tapegrad check EXPR x=... */
int tg_cli_hess(int argc, char **argv);  /* grad.c: tapegrad hess EXPR x=... */
int tg_cli_train(int argc, char **argv); /* train.c: tapegrad train ... */
int tg_cli_eval(int argc, char **argv);  /* train.c: tapegrad eval ... */
int tg_cli_predict(int argc, char **argv); /* predict.c: tapegrad predict ... */

#endif
