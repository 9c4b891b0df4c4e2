/*
 * cmd_json.c: JSON the analysis commands print alike, so that `place` and
 * `compare` cannot drift apart in how they spell a number or a forecast.
 */
#include "analyze/cmd_json.h"

#include <math.h>
#include <stdio.h>

struct json_object *cmd_json_double(double x)
{
	char buf[32];

	if (!isfinite(x)) /* not scored: JSON null, never the invalid token nan */
		return NULL;
	snprintf(buf, sizeof(buf), "%.6g", x);
	return json_object_new_double_s(x, buf);
}

struct json_object *cmd_json_forecast(const struct analyze_robust_choice *ch, int blocks,
				      int hist)
{
	struct json_object *f = json_object_new_object();
	char d[160];

	analyze_robust_describe(ch, d, sizeof(d));
	json_object_object_add(f, "estimator",
			       json_object_new_string(ch->volume ? "tokens" : "shares"));
	/* null: every block alike (no half-life); 0: the window alone */
	json_object_object_add(f, "half_life_windows",
			       isinf(ch->half_life) ? NULL : cmd_json_double(ch->half_life));
	json_object_object_add(f, "shrink", cmd_json_double(ch->shrink));
	json_object_object_add(f, "window_blocks", json_object_new_int(blocks - hist));
	json_object_object_add(f, "history_blocks", json_object_new_int(hist));
	json_object_object_add(f, "description", json_object_new_string(d));
	return f;
}
