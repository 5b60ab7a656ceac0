/* ids.c: random 128-bit identifiers. Only node/ generates them: apply never does (DESIGN
 * section 5), so run ids travel inside the START command. */
#include "ids.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

#include "../proto/base.h"

int weft_id_random_hex(char *out, size_t cap) {
    WEFT_ASSERT(out != NULL && cap >= WEFTD_ID_HEX_BYTES + 1);
    uint8_t raw[WEFTD_ID_HEX_BYTES / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0xF];
    }
    out[WEFTD_ID_HEX_BYTES] = '\0';
    WEFT_ASSERT(out[0] != '\0');
    return 0;
}
