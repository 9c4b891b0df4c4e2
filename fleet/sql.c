/*
 * sql.c: `moetrace sql clickhouse://... "QUERY"` -- one statement run on
 * the server, its answer printed as the server formats it (read-only
 * unless --write, as for a trace file).
 */
#include "fleet/fleet.h"

#include <stdio.h>
#include <string.h>

int fleet_sql_run(const char *url_text, const char *sql, const char *format, int write,
		  struct util_err *err)
{
	static const char *const formats[][2] = {
		{ "table", "PrettyCompactNoEscapes" },
		{ "csv", "CSVWithNames" },
		{ "json", "JSONEachRow" },
	};
	struct fleet_url url;
	struct fleet_ch *c = NULL;
	struct util_buf q = UTIL_BUF_INIT, ans = UTIL_BUF_INIT;
	const char *ch_format = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(format, formats[i][0]))
			ch_format = formats[i][1];
	if (!ch_format)
		return util_err_set(err, UTIL_EUSAGE,
				    "--format %s: not available from ClickHouse (table, csv or json)",
				    format);
	if ((rc = fleet_url_parse(url_text, &url, err)) || (rc = fleet_ch_new(&url, &c, err)))
		return rc;
	util_buf_addf(&q, "%s", sql);
	rc = fleet_ch_query_opts(c, q.data, ch_format, write, &ans, err);
	/* the server answered with an exception about the query (HTTP 400 or,
	 * in 18.16, 500 with "Code: N"): the query is the user's mistake, as
	 * an SQL error is on a trace file */
	if (rc == UTIL_EIO && strstr(err->msg, " answered HTTP ") && strstr(err->msg, ": Code: ")) {
		rc = err->code = UTIL_EUSAGE;
		if (!write && strstr(err->msg, "readonly mode")) {
			size_t n = strlen(err->msg);

			snprintf(err->msg + n, sizeof(err->msg) - n, "%s",
				 "; add --write to change the database");
		}
	}
	if (!rc && ans.len && fwrite(ans.data, 1, ans.len, stdout) != ans.len)
		rc = util_err_set(err, UTIL_EIO, "cannot write output");
	util_buf_release(&q);
	util_buf_release(&ans);
	fleet_ch_free(c);
	return rc;
}
