/* ids.h: random identifiers (cluster ids, run ids, poll ids) from the kernel's CSPRNG. */
#ifndef WEFT_NODE_IDS_H
#define WEFT_NODE_IDS_H

#include <stddef.h>

/* Random 128-bit ids as lowercase hex: 32 characters plus the NUL. */
#define WEFTD_ID_HEX_BYTES 32u

/* Fills `out` (at least WEFTD_ID_HEX_BYTES + 1 bytes) with a fresh random id. Returns 0, or a
 * negative errno from getrandom (which then has written nothing useful). */
int weft_id_random_hex(char *out, size_t cap);

#endif
