/* errors.h: weft's error codes and weft_err. They are part of libweft's public API, so they live
 * in client/include/weft/errors.h; the layers include them through this header. */
#ifndef WEFT_PROTO_ERRORS_H
#define WEFT_PROTO_ERRORS_H

#include "weft/errors.h"

#endif
