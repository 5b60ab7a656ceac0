/* batch.h: the framing of one raft entry, [version, leader_time_ms, [bin cmd...]] (DESIGN
 * section 5). The functions are declared in host.h; this header holds the format's constants. */
#ifndef WEFT_RAFT_BATCH_H
#define WEFT_RAFT_BATCH_H

#include "../proto/limits.h"
#include "host.h"

/* Format version written into every entry. An entry with another version is refused: a node
 * that meets a newer log than it understands must not guess. */
#define WEFT_BATCH_VERSION 1u

/* Bytes of framing around the commands, at most: the outer array header (1), the version (1),
 * the leader time (9), the command array header (5). */
#define WEFT_BATCH_HEADER_BYTES_MAX 16u
/* raft_uv writes an entry's bytes unpadded but reads them back as if padded to 8 bytes (an
 * assertion compiled out of Debian's build, uv_segment.c): an entry whose length is not a
 * multiple of 8 corrupts the segment for every later read. So entries are zero-padded after the
 * msgpack array to a multiple of this, and the decoder accepts only such zero padding. */
#define WEFT_BATCH_ALIGN_BYTES 8u
/* Bytes of framing per command, at most: a bin32 header. */
#define WEFT_BATCH_CMD_HEADER_BYTES_MAX 5u

/* The largest entry an encoder may produce: every command header plus the command bytes. */
#define WEFT_BATCH_ENTRY_BYTES_MAX                                                           \
    ((size_t)WEFT_BATCH_HEADER_BYTES_MAX +                                                   \
     (size_t)WEFT_RAFT_BATCH_CMDS_MAX * WEFT_BATCH_CMD_HEADER_BYTES_MAX +                     \
     (size_t)WEFT_RAFT_BATCH_BYTES_MAX + WEFT_BATCH_ALIGN_BYTES - 1)

_Static_assert(WEFT_RAFT_BATCH_BYTES_MAX <= UINT32_MAX / 2,
               "command bytes are summed in 32 bits with headroom");
_Static_assert(WEFT_RAFT_BATCH_CMDS_MAX <= 0xFFFFu,
               "a batch's command array always fits an array16 header or less");

#endif
