/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
 * file this library reads back. Table-driven, eight bytes per step
 * ("slicing by 8"); the tables are built on the stack per call (8 KiB, a few
 * microseconds), so there is no global state to initialise or race on.
 */
#ifndef QE_CRC32C_H
#define QE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC32C of bytes[0..n) continuing from `crc` (0 to start):
 * qe_crc32c(qe_crc32c(0, a, n), b, m) == the CRC of a then b.
 * qe_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t qe_crc32c(uint32_t crc, const void *bytes, size_t n);

#endif /* QE_CRC32C_H */
