/*
 * net.c: addresses to listen on, for the /metrics endpoint (tui/server.c)
 * and the commands that check one before they open anything.
 */
#include "util/util.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* HOST:PORT, [V6HOST]:PORT or :PORT (all interfaces) into addr. */
int util_listen_parse(const char *arg, struct sockaddr_storage *addr, struct util_err *err)
{
	char host[256];
	const char *colon = strrchr(arg, ':');
	struct addrinfo hints, *res = NULL;
	int port, rc;
	size_t n;

	if (!colon)
		return util_err_set(err, UTIL_EUSAGE, "--listen: '%s' is not HOST:PORT", arg);
	if (util_parse_int(colon + 1, 0, 65535, &port, "--listen port", err))
		return err->code;
	n = (size_t)(colon - arg);
	if (n >= sizeof(host))
		return util_err_set(err, UTIL_EUSAGE, "--listen: host too long");
	memcpy(host, arg, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res)) != 0)
		return util_err_set(err, UTIL_EUSAGE, "--listen: cannot resolve '%s': %s", host,
				    gai_strerror(rc));
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int util_listen_probe(const char *arg, struct util_err *err)
{
	struct sockaddr_storage addr = { 0 };
	int fd, one = 1, rc = 0;

	if ((rc = util_listen_parse(arg, &addr, err)))
		return rc;
	if ((fd = socket(addr.ss_family, SOCK_STREAM, 0)) < 0)
		return util_err_set(err, UTIL_EIO, "cannot listen on '%s': %s", arg, strerror(errno));
	/* as the server will: a port left in TIME_WAIT is free */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr,
		 addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					    : sizeof(struct sockaddr_in)) != 0)
		rc = util_err_set(err, UTIL_EIO, "cannot listen on '%s': %s", arg, strerror(errno));
	close(fd);
	return rc;
}
