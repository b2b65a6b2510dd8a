/*
 * CRC32C (Castagnoli polynomial, reflected 0x82F63B78): the checksum of
 * every byte format this library reads (adapter weights, pattern caches).
 * qe_crc32c(0, p, n) is the standard CRC32C of n bytes; passing the result
 * back as crc continues it over more bytes.
 */
#ifndef QE_CRC32C_H
#define QE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t qe_crc32c_update(uint32_t crc, const void *bytes, size_t n);

/*
 * The envelope every adapt byte format shares: u32 magic, u32 version,
 * u64 total length at the start, and the CRC32C of all earlier bytes in the
 * last four. Returns QE_OK, or QE_ERR_TRUNCATED (shorter than it says or
 * than min_bytes), QE_ERR_FORMAT (wrong magic, longer than it says),
 * QE_ERR_VERSION, QE_ERR_CHECKSUM.
 */
int qe_adapt_check_envelope(const unsigned char *bytes, size_t n, uint32_t magic, uint32_t version,
                            size_t min_bytes);

#endif /* QE_CRC32C_H */
