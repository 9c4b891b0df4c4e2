/* cmd_json.h: JSON the analysis commands print alike (cmd_json.c). */
#ifndef MOETRACE_ANALYZE_CMD_JSON_H
#define MOETRACE_ANALYZE_CMD_JSON_H

#include "analyze/analyze.h"

#include <json-c/json.h>

/* x as a number of 6 significant digits, or NULL (JSON null) when it is
 * not finite: never the invalid token nan. */
struct json_object *cmd_json_double(double x);

/* The flagship's forecast as `place --json` and `compare --rounds --format
 * json` print it (docs/cli.md): the estimator ch chosen on `blocks` blocks,
 * the last blocks - hist of them the window. */
struct json_object *cmd_json_forecast(const struct analyze_robust_choice *ch, int blocks,
				      int hist);

#endif
