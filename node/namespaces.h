/* namespaces.h: the node's check that a request's namespace is registered (issue 10). The
 * registry lives in shard WEFT_NAMESPACE_REGISTRY_SHARD (shards/namespace.c); every node keeps
 * the names it has seen registered, so the check costs a lookup on the hot path. A name it has
 * not seen is read linearizably from the registry (here after a barrier when this node leads
 * the registry shard, else from its leader through forward.h) before it is refused, so a
 * namespace registered through any node is accepted by every node at once. Namespaces are
 * never deleted, so a cached name never goes stale. */
#ifndef WEFT_NODE_NAMESPACES_H
#define WEFT_NODE_NAMESPACES_H

#include "../proto/errors.h"
#include "node.h"

/* Names a node caches, at most: the registry's own cap (shards/namespace.c). Past it, names
 * are looked up in the registry every time instead of cached. */
#define WEFTD_NS_CACHE_MAX 1000u

/* Names compared for the "did you mean" hint, at most this long: edit distance is quadratic in
 * the length, and a typo hint for longer names is not worth it. */
#define WEFTD_NS_SIMILAR_BYTES_MAX 64u
/* Edits (insert, delete, replace a byte) that make a registered name "close" to a refused one. */
#define WEFTD_NS_SIMILAR_EDITS_MAX 2u

/* Checks that `ns` is registered, then calls done(r, NULL), or done(r, err) with the refusal
 * (NOT_FOUND naming "namespace", with the command that registers it) or why the registry could
 * not be read. `done` may run before this returns (a known name) or later, once. A request a
 * peer forwarded here was checked by that peer and is not checked again. */
void weft_namespaces_check(weft_req *r, weft_str ns, void (*done)(weft_req *r, const weft_err *err));

/* Frees the cache (after the loop ended). */
void weft_namespaces_free(weft_node *n);

#endif
