/* address.c: weftd's addresses. Every address a node is given is resolved once, when the
 * settings are read, so that the running node (binding its ports, dialling its peers, telling
 * clients where the nodes are) works only with numeric addresses and never blocks its loop on
 * a DNS lookup. */
#include "address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../proto/base.h"

/* Longest DNS name (RFC 1035), plus NUL. */
#define ADDRESS_HOST_BYTES_MAX 254u

/* Letters, digits, '-' and '.': what a DNS name is made of. */
static bool address_is_name(const char *h) {
    if (h[0] == '\0' || h[0] == '-' || h[0] == '.') return false;
    for (const char *p = h; *p != '\0'; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '.';
        if (!ok) return false;
    }
    return true;
}

int weft_address_split(const char *addr, char *host, unsigned host_cap, uint16_t *port) {
    WEFT_ASSERT(addr != NULL && host != NULL && port != NULL);
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr) return -1;
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    bool bracketed = h[0] == '[';
    if (bracketed) {
        if (hlen < 3 || h[hlen - 1] != ']') return -1;
        h++;
        hlen -= 2;
    }
    char buf[ADDRESS_HOST_BYTES_MAX];
    if (hlen == 0 || hlen >= sizeof buf || hlen >= host_cap) return -1;
    memcpy(buf, h, hlen);
    buf[hlen] = '\0';
    struct in6_addr in6;
    struct in_addr in4;
    bool ok = bracketed ? inet_pton(AF_INET6, buf, &in6) == 1
                        : inet_pton(AF_INET, buf, &in4) == 1 || address_is_name(buf);
    if (!ok) return -1;
    char *end = NULL;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || colon[1] < '0' || colon[1] > '9' ||
        p == 0 || p > 65535) {
        return -1;
    }
    memcpy(host, buf, hlen + 1);
    *port = (uint16_t)p;
    return 0;
}

/* Looks `host` up: the first IPv4 address, else (unless ipv4_only) the first IPv6 one. */
static int address_lookup(const char *host, bool ipv4_only, char *ip, size_t ip_cap, bool *v6,
                          char *why, size_t why_cap) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &res);
    if (gai != 0) {
        snprintf(why, why_cap, "names a host that does not resolve (%s: %s)", host,
                 gai_strerror(gai));
        return -1;
    }
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) pick = ai;
    }
    for (const struct addrinfo *ai = res; ai != NULL && pick == NULL && !ipv4_only;
         ai = ai->ai_next) {
        if (ai->ai_family == AF_INET6) pick = ai;
    }
    int rc = -1;
    if (pick == NULL) {
        snprintf(why, why_cap, "names a host with no IPv4 address (%s)", host);
    } else if (pick->ai_family == AF_INET) {
        *v6 = false;
        rc = uv_ip4_name((const struct sockaddr_in *)pick->ai_addr, ip, ip_cap) == 0 ? 0 : -1;
    } else {
        *v6 = true;
        rc = uv_ip6_name((const struct sockaddr_in6 *)pick->ai_addr, ip, ip_cap) == 0 ? 0 : -1;
    }
    freeaddrinfo(res);
    return rc;
}

int weft_address_resolve(const char *addr, bool ipv4_only, char *out, size_t cap, char *why,
                         size_t why_cap) {
    WEFT_ASSERT(addr != NULL && out != NULL && why != NULL && why_cap > 0);
    char host[ADDRESS_HOST_BYTES_MAX];
    uint16_t port = 0;
    why[0] = '\0';
    if (weft_address_split(addr, host, sizeof host, &port) != 0) {
        snprintf(why, why_cap, "is not HOST:PORT");
        return -1;
    }
    char ip[ADDRESS_HOST_BYTES_MAX] = "";
    bool v6 = false;
    struct in_addr in4;
    struct in6_addr in6;
    if (inet_pton(AF_INET, host, &in4) == 1) {
        snprintf(ip, sizeof ip, "%s", host);
    } else if (inet_pton(AF_INET6, host, &in6) == 1) {
        v6 = true;
        snprintf(ip, sizeof ip, "%s", host);
    } else if (address_lookup(host, ipv4_only, ip, sizeof ip, &v6, why, why_cap) != 0) {
        return -1;
    }
    if (v6 && ipv4_only) {
        snprintf(why, why_cap, "is IPv6");
        return -1;
    }
    int n = snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)port);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(why, why_cap, "is too long");
        return -1;
    }
    WEFT_ASSERT(weft_address_is_ipv6(out) == v6);
    return 0;
}

int weft_address_sockaddr(const char *addr, struct sockaddr_storage *out) {
    WEFT_ASSERT(addr != NULL && out != NULL);
    char host[ADDRESS_HOST_BYTES_MAX];
    uint16_t port = 0;
    if (weft_address_split(addr, host, sizeof host, &port) != 0) return -1;
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0) return 0;
    if (addr[0] == '[' && uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0) return 0;
    return -1;
}

bool weft_address_is_ipv6(const char *addr) {
    return addr != NULL && addr[0] == '[';
}
