/* address.h: the "host:port" addresses weftd takes (--listen, --raft-listen, --peers): their
 * syntax, their resolution to a numeric address once at start, and their socket form. */
#ifndef WEFT_NODE_ADDRESS_H
#define WEFT_NODE_ADDRESS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Splits "HOST:PORT" into its host and port (1..65535). HOST is an IPv4 literal
 * ("127.0.0.1"), an IPv6 literal in brackets ("[::1]", returned without them), or a DNS name
 * ("localhost", "weft-0.weft"). Only the syntax is checked: a name is not looked up. `host`
 * has room for `host_cap` bytes. Returns 0, or -1 with nothing written. */
int weft_address_split(const char *addr, char *host, unsigned host_cap, uint16_t *port);

/* Resolves `addr` (any form weft_address_split accepts) to a numeric address written to
 * `out` (capacity `cap`): "a.b.c.d:port", or "[v6]:port" unless `ipv4_only`. A literal is
 * kept as it is; a name is looked up (getaddrinfo, which blocks: call it before the loop
 * runs), its first IPv4 address preferred. Returns 0, or -1 with a reason ("does not
 * resolve: ...", "is IPv6") in `why` (capacity `why_cap`) that follows the flag's name. */
int weft_address_resolve(const char *addr, bool ipv4_only, char *out, size_t cap, char *why,
                         size_t why_cap);

/* The socket address of a numeric address (as weft_address_resolve writes it). Returns 0, or
 * -1 for a name or a malformed address. */
int weft_address_sockaddr(const char *addr, struct sockaddr_storage *out);

/* True when `addr` is a numeric IPv6 address ("[...]:port"). */
bool weft_address_is_ipv6(const char *addr);

#endif
