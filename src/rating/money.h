/*
 * Money as a type: an exact decimal, integer units with a scale
 * (value = units × 10^-scale), never binary floating point. Prices and
 * amounts are parsed from decimal strings, multiplied exactly, and rounded
 * in exactly one place (xd_dec_round, half-even). Every operation checks
 * its limits and returns XD_ELIMIT rather than a wrong number.
 *
 * Limits: |units| < 10^36 (36 significant digits) and 0 <= scale <= 36.
 * That holds any quantity the event model accepts (at most 10^12 per line,
 * 10^4 lines) times any sane price with room to spare; a product beyond it
 * is an overflow, reported, never wrapped.
 *
 * Quantities arrive as JSON numbers, which cJSON keeps as doubles.
 * xd_dec_from_double() turns a double into the decimal with the fewest
 * significant digits that reads back as the same double (the shortest
 * round-trip form, as printf("%.{1..17}g") finds it). For any number written
 * with 15 significant digits or fewer that is exactly the number as written
 * in the event ("0.1" -> 0.1, "12.345" -> 12.345), so no binary noise ever
 * reaches an amount.
 *
 * Values are plain structs passed by value; nothing here allocates.
 */
#ifndef XD_MONEY_H
#define XD_MONEY_H

#include <stddef.h>
#include <stdint.h>

__extension__ typedef __int128 xd_i128;

#define XD_DEC_MAX_DIGITS 36 /* significant digits of units */
#define XD_DEC_MAX_SCALE  36 /* digits after the point */
#define XD_DEC_BUFSZ      48 /* enough for any xd_dec_format() output and its NUL */

struct xd_dec {
    xd_i128 units; /* the value times 10^scale; |units| < 10^36 */
    int scale;     /* digits after the point, 0..36 */
};

/* Constructors. */
struct xd_dec xd_dec_int(int64_t v); /* v, scale 0 */

/*
 * Parses "-?D+(.D+)?" (s[0..len), no sign '+', no exponent, no spaces):
 * "12.50" -> units 1250 scale 2 (the scale written is kept). Returns 0,
 * XD_EINVAL for anything else, XD_ELIMIT for more than 36 digits (leading
 * zeros of the integer part do not count) or 36 decimals.
 */
int xd_dec_parsen(const char *s, size_t len, struct xd_dec *out);
int xd_dec_parse(const char *s, struct xd_dec *out); /* NUL-terminated */

/*
 * The shortest decimal that reads back as d (see above). Returns 0,
 * XD_EINVAL for NaN or infinity, XD_ELIMIT when it needs more than 36
 * digits or decimals (|d| >= 10^36, or tiny values like 1e-40).
 */
int xd_dec_from_double(double d, struct xd_dec *out);

/*
 * Writes d with exactly d.scale decimals ("4.20", "-0.125", "12") into
 * out[cap], NUL-terminated; returns the length, or XD_ETOOBIG when cap is too
 * small (XD_DEC_BUFSZ always suffices).
 */
int xd_dec_format(struct xd_dec d, char *out, size_t cap);

/* Exact arithmetic; 0 or XD_ELIMIT (result beyond the limits; *out untouched). */
int xd_dec_add(struct xd_dec a, struct xd_dec b, struct xd_dec *out);
int xd_dec_sub(struct xd_dec a, struct xd_dec b, struct xd_dec *out);
/* a × b at scale a.scale + b.scale (trailing zeros are dropped when that scale is over 36). */
int xd_dec_mul(struct xd_dec a, struct xd_dec b, struct xd_dec *out);
struct xd_dec xd_dec_neg(struct xd_dec a);

/*
 * The one rounding function: d at exactly `scale` decimals. Fewer decimals
 * round half to even (0.125 -> 0.12, 0.135 -> 0.14, -0.125 -> -0.12, 2.5 -> 2
 * at scale 0); more decimals append zeros (exact; XD_ELIMIT when that
 * overflows). scale must be 0..36 (XD_EINVAL otherwise).
 */
int xd_dec_round(struct xd_dec d, int scale, struct xd_dec *out);

/* The same value with trailing fractional zeros removed ("12.500" -> "12.5", "3.00" -> "3"). */
struct xd_dec xd_dec_normal(struct xd_dec d);

/* -1, 0 or 1 as a < b, a == b, a > b, comparing values (1.50 == 1.5). */
int xd_dec_cmp(struct xd_dec a, struct xd_dec b);
int xd_dec_sign(struct xd_dec a); /* -1, 0, 1 */

/*
 * ISO 4217: the number of decimals of code's minor unit (2 for "USD", 0 for
 * "JPY", 3 for "KWD"), or XD_ENOTFOUND for a code not in the table (which
 * holds the active currencies with a minor unit; not funds or metals).
 */
int xd_currency_minor(const char *code);
/* The table itself, for docs and tests: code i (0 <= i < xd_currency_count()), sorted. */
size_t xd_currency_count(void);
const char *xd_currency_code(size_t i);

#endif
