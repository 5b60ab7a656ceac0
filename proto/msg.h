/* msg.h: the protocol's structs, enums and operation table (client/include/weft/protocol.h,
 * public because libweft's API takes them) with the schema codec that encodes and decodes
 * them (schema.h). */
#ifndef WEFT_PROTO_MSG_H
#define WEFT_PROTO_MSG_H

#include "schema.h"
#include "weft/protocol.h"

#endif
