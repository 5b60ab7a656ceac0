/* reply.c: lifetime of a weft_reply. */
#include "reply.h"

#include <stdlib.h>
#include <string.h>

void weft_reply_reset(weft_reply *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}

void weft_reply_move(weft_reply *dst, weft_reply *src) {
    if (dst == src) return;
    weft_reply_reset(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}
