/* weavepcap._core: the per-packet reference decoder (decode/packet.py) compiled, one pass over a chunk.
 *
 * Python preallocates the packet-table columns (schema.empty_columns) and hands them over as writable
 * buffers; this file writes each field exactly where decode/packet.py would put it in its row dict,
 * and leaves every other cell at its missing value. Text columns (addresses) come back as lists of str,
 * formatted once per distinct address. Fragments and TCP control segments come back as byte spans so the
 * Python side feeds the defragmenter and the stream tracker in frame order, as the reference does.
 * No numpy headers: only the buffer protocol, so the build needs gcc and the Python headers alone.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The numeric columns this decoder fills, in the order Python passes them: name, C type, missing value. */
#define CORE_COLUMNS(X)                 \
    X(pkt_dir, int8_t, -1)              \
    X(eth_src, uint64_t, 0)             \
    X(eth_dst, uint64_t, 0)             \
    X(vlan, int32_t, -1)                \
    X(ethertype, int32_t, -1)           \
    X(l3_off, int32_t, -1)              \
    X(ip_version, int8_t, 0)            \
    X(ip_hdr_len, int16_t, -1)          \
    X(ip_len, int32_t, -1)              \
    X(ip_id, int64_t, -1)               \
    X(ip_df, uint8_t, 0)                \
    X(ip_mf, uint8_t, 0)                \
    X(ip_frag_off, int32_t, -1)         \
    X(ip_ttl, int16_t, -1)              \
    X(ip_proto, int16_t, -1)            \
    X(sport, int32_t, -1)               \
    X(dport, int32_t, -1)               \
    X(udp_len, int32_t, -1)             \
    X(udp_csum, int32_t, -1)            \
    X(tcp_flags, int16_t, -1)           \
    X(tcp_seq, int64_t, -1)             \
    X(tcp_ack, int64_t, -1)             \
    X(l4_payload_len, int32_t, -1)      \
    X(icmp_type, int16_t, -1)           \
    X(icmp_code, int16_t, -1)           \
    X(icmp_mtu, int32_t, -1)            \
    X(q_ip_version, int8_t, 0)          \
    X(q_ip_len, int32_t, -1)            \
    X(q_ip_id, int64_t, -1)             \
    X(q_ip_df, uint8_t, 0)              \
    X(q_ip_proto, int16_t, -1)          \
    X(q_sport, int32_t, -1)             \
    X(q_dport, int32_t, -1)             \
    X(q_vxlan_vni, int64_t, -1)         \
    X(q_inner_zero_eth, uint8_t, 0)     \
    X(tun_type, int8_t, 0)              \
    X(vxlan_flags, int16_t, -1)         \
    X(vxlan_vni, int64_t, -1)           \
    X(inner_len, int32_t, -1)           \
    X(inner_eth_src, uint64_t, 0)       \
    X(inner_eth_dst, uint64_t, 0)       \
    X(inner_ethertype, int32_t, -1)     \
    X(inner_zero_eth, uint8_t, 0)       \
    X(inner_ip_proto, int16_t, -1)      \
    X(weave_conn_uid, uint64_t, 0)      \
    X(weave_hb_len, int32_t, -1)        \
    X(sleeve_sender, uint64_t, 0)       \
    X(sleeve_src_peer, uint64_t, 0)     \
    X(sleeve_dst_peer, uint64_t, 0)     \
    X(sleeve_frames, int16_t, -1)       \
    X(sleeve_frame_len, int32_t, -1)    \
    X(sleeve_zero_frame, uint8_t, 0)    \
    X(sleeve_counter, int64_t, -1)

#define TEXT_COLUMNS(X) X(ip_src) X(ip_dst) X(q_ip_src) X(q_ip_dst) X(inner_ip_src) X(inner_ip_dst)

enum {
#define X(name, type, missing) C_##name,
    CORE_COLUMNS(X)
#undef X
        N_COLUMNS
};
enum {
#define X(name) T_##name,
    TEXT_COLUMNS(X)
#undef X
        N_TEXTS
};

/* wire constants (weavepcap/wire.py) */
#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define ETH_TEB 0x6558
#define MAX_VLAN_TAGS 8
#define MAX_IPV6_EXT 16
#define MAX_SLEEVE_FRAMES 10000
#define SLEEVE_NAME 6
#define SLEEVE_FRAME_HDR 14
#define COUNTER_MASK 0x7FFFFFFFFFFFFFFFULL
#define MAX_PORTS 64
#define PREFETCH_AHEAD 6

/* --- a cache of address texts: each distinct address is formatted and allocated once per call --- */
typedef struct {
    uint8_t key[16];
    PyObject *text; /* NULL: empty slot */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;
    size_t used;
} Cache;

static int cache_init(Cache *c) {
    c->mask = 1023;
    c->used = 0;
    c->slots = PyMem_Calloc(c->mask + 1, sizeof(Slot));
    return c->slots ? 0 : -1;
}

static void cache_free(Cache *c) {
    if (!c->slots) return;
    for (size_t k = 0; k <= c->mask; k++) Py_XDECREF(c->slots[k].text);
    PyMem_Free(c->slots);
    c->slots = NULL;
}

static size_t hash16(const uint8_t *key) {
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ULL)) * 0xC2B2AE3D27D4EB4FULL;
    return (size_t)(h ^ (h >> 29));
}

static int cache_grow(Cache *c) {
    size_t old_mask = c->mask;
    Slot *old = c->slots;
    size_t mask = old_mask * 2 + 1;
    Slot *slots = PyMem_Calloc(mask + 1, sizeof(Slot));
    if (!slots) return -1;
    for (size_t k = 0; k <= old_mask; k++) {
        if (!old[k].text) continue;
        size_t at = hash16(old[k].key) & mask;
        while (slots[at].text) at = (at + 1) & mask;
        slots[at] = old[k];
    }
    PyMem_Free(old);
    c->slots = slots;
    c->mask = mask;
    return 0;
}

/* The str of a 4- or 16-byte address (new reference not taken: the cache owns it), NULL on error. */
static PyObject *cache_text(Cache *c, const uint8_t *raw, int v6) {
    uint8_t key[16] = {0};
    memcpy(key, raw, v6 ? 16 : 4);
    size_t at = hash16(key) & c->mask;
    while (c->slots[at].text) {
        if (memcmp(c->slots[at].key, key, 16) == 0) return c->slots[at].text;
        at = (at + 1) & c->mask;
    }
    char buf[64];
    /* inet_ntop: the same C library call socket.inet_ntop makes, so the text matches the reference */
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, raw, buf, sizeof buf)) {
        PyErr_SetString(PyExc_ValueError, "inet_ntop failed");
        return NULL;
    }
    PyObject *text = PyUnicode_FromString(buf);
    if (!text) return NULL;
    memcpy(c->slots[at].key, key, 16);
    c->slots[at].text = text;
    if (++c->used * 2 > c->mask && cache_grow(c) < 0) return NULL;
    return text;
}

/* --- decoding state of one call --- */
typedef struct {
    void *col[N_COLUMNS];
    PyObject **text[N_TEXTS]; /* the object arrays of the text columns (each item a str reference) */
    Cache cache4, cache6;
    int failed;
    long vxlan_ports[MAX_PORTS];
    int n_vxlan;
    long geneve_ports[MAX_PORTS];
    int n_geneve;
    long weave_port, fastdp_port;
    /* outputs: fragments (row, begin, end) and control segments (row, seq, begin, end, length) */
    int64_t *frag;
    Py_ssize_t n_frag;
    int64_t *ctl;
    Py_ssize_t n_ctl;
    /* the frame being decoded */
    const uint8_t *b;
    int64_t base; /* offset of the frame in the chunk buffer */
    Py_ssize_t row;
} Ctx;

#define SETU(ctx, name, value) (((uint64_t *)(ctx)->col[C_##name])[(ctx)->row] = (uint64_t)(value))
#define SETB(ctx, name, value) (((uint8_t *)(ctx)->col[C_##name])[(ctx)->row] = (value) ? 1 : 0)
#define SET64(ctx, name, value) (((int64_t *)(ctx)->col[C_##name])[(ctx)->row] = (int64_t)(value))
/* a value the column's type cannot hold becomes the missing value, like decode/chunk.py's _typed */
#define SET32(ctx, name, value)                                                              \
    do {                                                                                     \
        int64_t v_ = (value);                                                                \
        ((int32_t *)(ctx)->col[C_##name])[(ctx)->row] =                                      \
            (v_ >= INT32_MIN && v_ <= INT32_MAX) ? (int32_t)v_ : (int32_t)-1;                \
    } while (0)
#define SET16(ctx, name, value)                                                              \
    do {                                                                                     \
        int64_t v_ = (value);                                                                \
        ((int16_t *)(ctx)->col[C_##name])[(ctx)->row] =                                      \
            (v_ >= INT16_MIN && v_ <= INT16_MAX) ? (int16_t)v_ : (int16_t)-1;                \
    } while (0)
#define SET8(ctx, name, value)                                                               \
    do {                                                                                     \
        int64_t v_ = (value);                                                                \
        ((int8_t *)(ctx)->col[C_##name])[(ctx)->row] = (v_ >= -128 && v_ <= 127) ? (int8_t)v_ : (int8_t)-1; \
    } while (0)
/* _put: only a field that was read (>= 0) is stored */
#define PUT32(ctx, name, value) do { int64_t w_ = (value); if (w_ >= 0) SET32(ctx, name, w_); } while (0)
#define PUT16(ctx, name, value) do { int64_t w_ = (value); if (w_ >= 0) SET16(ctx, name, w_); } while (0)
#define PUT64(ctx, name, value) do { int64_t w_ = (value); if (w_ >= 0) SET64(ctx, name, w_); } while (0)

static void set_text(Ctx *ctx, int column, int64_t pos, int v6) {
    if (ctx->failed) return;
    PyObject *text = cache_text(v6 ? &ctx->cache6 : &ctx->cache4, ctx->b + pos, v6);
    if (!text) {
        ctx->failed = 1;
        return;
    }
    PyObject **slot = &ctx->text[column][ctx->row];
    Py_INCREF(text);
    Py_XSETREF(*slot, text);
}

/* Big-endian unsigned of `width` bytes at pos, or -1 when it reaches past end (decode/packet.py _uint). */
static inline int64_t U(const Ctx *ctx, int64_t pos, int width, int64_t end) {
    if (pos < 0 || pos + width > end) return -1;
    uint64_t v = 0;
    for (int k = 0; k < width; k++) v = (v << 8) | ctx->b[pos + k];
    return (int64_t)v;
}

/* unchecked reads for callers that checked the bounds */
static inline uint64_t R(const Ctx *ctx, int64_t pos, int width) {
    uint64_t v = 0;
    for (int k = 0; k < width; k++) v = (v << 8) | ctx->b[pos + k];
    return v;
}

static inline int zero14(const Ctx *ctx, int64_t pos) {
    static const uint8_t zeros[14] = {0};
    return memcmp(ctx->b + pos, zeros, 14) == 0;
}

static inline int in_ports(const long *ports, int n, int64_t port) {
    for (int k = 0; k < n; k++)
        if (ports[k] == port) return 1;
    return 0;
}

/* --- IPv6 extension headers (packet.py walk_ipv6) --- */
typedef struct {
    int64_t proto, upper, frag_id, frag_off, frag_data;
    int frag_mf;
} Walk;

static void walk_ipv6(const Ctx *ctx, int64_t nh, int64_t pos, int64_t end, Walk *w) {
    w->proto = -1;
    w->upper = -1;
    w->frag_id = -1;
    w->frag_off = 0;
    w->frag_mf = 0;
    w->frag_data = -1;
    int k;
    for (k = 0; k < MAX_IPV6_EXT; k++) {
        int generic = nh == 0 || nh == 43 || nh == 60 || nh == 135 || nh == 139 || nh == 140 || nh == 253 ||
                      nh == 254;
        if (generic || nh == 51) {
            if (pos + 2 > end) return;
            int64_t size = nh == 51 ? ((int64_t)ctx->b[pos + 1] + 2) * 4 : ((int64_t)ctx->b[pos + 1] + 1) * 8;
            nh = ctx->b[pos];
            pos += size;
            continue;
        }
        if (nh == 44) {
            if (pos + 8 > end) return;
            int64_t flags = (int64_t)R(ctx, pos + 2, 2);
            w->frag_off = flags & 0xFFF8;
            w->frag_mf = (int)(flags & 1);
            w->frag_id = (int64_t)R(ctx, pos + 4, 4);
            nh = ctx->b[pos];
            pos += 8;
            w->frag_data = pos;
            if (w->frag_off) break;
            continue;
        }
        break;
    }
    if (k == MAX_IPV6_EXT) return; /* too many extension headers */
    w->proto = nh;
    w->upper = pos;
}

static void quote(Ctx *ctx, int64_t q, int64_t pend);
static void l4(Ctx *ctx, int64_t at, int64_t proto, int ipv, int64_t pend, int64_t ip_payload, int depth,
               int whole);

static void fragment(Ctx *ctx, int64_t begin, int64_t end) {
    if (end < begin) end = begin;
    int64_t *f = ctx->frag + 3 * ctx->n_frag++;
    f[0] = ctx->row;
    f[1] = ctx->base + begin;
    f[2] = ctx->base + end;
}

/* --- what UDP carries --- */
static void inner_ip(Ctx *ctx, int64_t i, int64_t ethertype, int64_t pend) {
    if (i >= pend) return;
    int version = ctx->b[i] >> 4;
    if (ethertype == ETH_IPV4 && version == 4) {
        PUT16(ctx, inner_ip_proto, U(ctx, i + 9, 1, pend));
        if (i + 16 <= pend) set_text(ctx, T_inner_ip_src, i + 12, 0);
        if (i + 20 <= pend) set_text(ctx, T_inner_ip_dst, i + 16, 0);
    } else if (ethertype == ETH_IPV6 && version == 6) {
        if (i + 24 <= pend) set_text(ctx, T_inner_ip_src, i + 8, 1);
        if (i + 40 <= pend) {
            set_text(ctx, T_inner_ip_dst, i + 24, 1);
            Walk w;
            walk_ipv6(ctx, ctx->b[i + 6], i + 40, pend, &w);
            if (w.proto >= 0) SET16(ctx, inner_ip_proto, w.proto);
        }
    }
}

static void inner_ethernet(Ctx *ctx, int64_t q, int64_t pend, int weave) {
    if (q + 6 <= pend) SETU(ctx, inner_eth_dst, R(ctx, q, 6));
    if (q + 12 <= pend) SETU(ctx, inner_eth_src, R(ctx, q + 6, 6));
    if (q + 14 > pend) return;
    int64_t ethertype = (int64_t)R(ctx, q + 12, 2);
    SET32(ctx, inner_ethertype, ethertype);
    if (zero14(ctx, q)) {
        SETB(ctx, inner_zero_eth, 1);
        if (weave) { /* fastdp heartbeat: 8-byte connection UID, then the frame's own 2-byte length */
            if (q + 22 <= pend) SETU(ctx, weave_conn_uid, R(ctx, q + 14, 8));
            if (q + 24 <= pend) SET32(ctx, weave_hb_len, (int64_t)R(ctx, q + 22, 2));
        }
        return;
    }
    inner_ip(ctx, q + 14, ethertype, pend);
}

static void sleeve(Ctx *ctx, int64_t p, int64_t pend, int64_t udp_len) {
    if (p + 6 <= pend) SETU(ctx, sleeve_sender, R(ctx, p, 6));
    if (p + 14 <= pend) SET64(ctx, sleeve_counter, R(ctx, p + 6, 8) & COUNTER_MASK);
    if (p + 12 <= pend) SETU(ctx, sleeve_src_peer, R(ctx, p + 6, 6));
    if (p + 18 <= pend) SETU(ctx, sleeve_dst_peer, R(ctx, p + 12, 6));
    int64_t frame_len = U(ctx, p + 18, 2, pend);
    if (frame_len >= 0) SET32(ctx, sleeve_frame_len, frame_len);
    if (p + 34 <= pend && zero14(ctx, p + 20)) SETB(ctx, sleeve_zero_frame, 1);
    int64_t payload_len = udp_len - 8;
    if (frame_len < 0 || payload_len < SLEEVE_NAME + SLEEVE_FRAME_HDR) return;
    /* the chain must consume the datagram exactly (weave treats trailing bytes as a decode error) */
    int64_t pos = SLEEVE_NAME;
    int64_t count = 0;
    while (pos < payload_len && count < MAX_SLEEVE_FRAMES) {
        if (pos + SLEEVE_FRAME_HDR > payload_len) return;
        int64_t length = U(ctx, p + pos + 12, 2, pend);
        if (length < 0) return;
        pos += SLEEVE_FRAME_HDR + length;
        count++;
    }
    if (pos == payload_len) SET16(ctx, sleeve_frames, count);
}

static void udp_payload(Ctx *ctx, int64_t p, int64_t pend, int64_t sport, int64_t dport, int64_t udp_len) {
    if (in_ports(ctx->vxlan_ports, ctx->n_vxlan, dport)) {
        if (p + 8 > pend) return;
        SET8(ctx, tun_type, 1);
        SET16(ctx, vxlan_flags, ctx->b[p]);
        SET64(ctx, vxlan_vni, R(ctx, p + 4, 3));
        SET32(ctx, inner_len, udp_len >= 16 ? udp_len - 16 : -1);
        inner_ethernet(ctx, p + 8, pend, dport == ctx->fastdp_port);
    } else if (in_ports(ctx->geneve_ports, ctx->n_geneve, dport)) {
        if (p + 8 > pend) return;
        int64_t options = (int64_t)(ctx->b[p] & 0x3F) * 4;
        int64_t protocol = (int64_t)R(ctx, p + 2, 2);
        SET8(ctx, tun_type, 2);
        SET64(ctx, vxlan_vni, R(ctx, p + 4, 3));
        int64_t inner_len = udp_len - 16 - options;
        SET32(ctx, inner_len, inner_len >= 0 ? inner_len : -1);
        int64_t inner = p + 8 + options;
        if (protocol == ETH_TEB) {
            inner_ethernet(ctx, inner, pend, 0);
        } else {
            SET32(ctx, inner_ethertype, protocol); /* Geneve can carry IP directly */
            inner_ip(ctx, inner, protocol, pend);
        }
    } else if (sport == ctx->weave_port || dport == ctx->weave_port) {
        sleeve(ctx, p, pend, udp_len);
    }
}

/* --- IP in IP (4 / 41): inner addresses to inner_ip_*, the inner transport to the L4 columns --- */
static void ip_in_ip(Ctx *ctx, int64_t pos, int64_t proto, int64_t pend) {
    if (pos >= pend) return;
    int version = ctx->b[pos] >> 4;
    if (proto == 4 && version == 4) {
        int64_t ihl = (int64_t)(ctx->b[pos] & 0x0F) * 4;
        int64_t inner_proto = U(ctx, pos + 9, 1, pend);
        if (inner_proto >= 0) SET16(ctx, inner_ip_proto, inner_proto);
        if (pos + 16 <= pend) set_text(ctx, T_inner_ip_src, pos + 12, 0);
        if (pos + 20 <= pend) set_text(ctx, T_inner_ip_dst, pos + 16, 0);
        int64_t ip_len = U(ctx, pos + 2, 2, pend);
        int64_t flags = U(ctx, pos + 6, 2, pend);
        if (ihl < 20 || pos + ihl > pend || flags < 0 || (flags & 0x1FFF) || inner_proto < 0) return;
        int64_t inner_end = ip_len >= ihl ? (pend < pos + ip_len ? pend : pos + ip_len) : pend;
        int64_t payload = ip_len >= 0 ? ip_len - ihl : -1;
        l4(ctx, pos + ihl, inner_proto, 4, inner_end, payload, 1, 0);
    } else if (proto == 41 && version == 6) {
        if (pos + 24 <= pend) set_text(ctx, T_inner_ip_src, pos + 8, 1);
        if (pos + 40 > pend) return;
        set_text(ctx, T_inner_ip_dst, pos + 24, 1);
        int64_t payload_len = (int64_t)R(ctx, pos + 4, 2);
        int64_t inner_end = payload_len > 0 ? (pend < pos + 40 + payload_len ? pend : pos + 40 + payload_len) : pend;
        Walk w;
        walk_ipv6(ctx, ctx->b[pos + 6], pos + 40, inner_end, &w);
        if (w.proto < 0) return;
        SET16(ctx, inner_ip_proto, w.proto);
        if (w.frag_off) return;
        int64_t payload = payload_len + 40 - (w.upper - pos);
        l4(ctx, w.upper, w.proto, 6, inner_end, payload, 1, 0);
    }
}

/* --- transport --- */
static void l4(Ctx *ctx, int64_t at, int64_t proto, int ipv, int64_t pend, int64_t ip_payload, int depth,
               int whole) {
    if (proto == 17) {
        int64_t sport = U(ctx, at, 2, pend), dport = U(ctx, at + 2, 2, pend), udp_len = U(ctx, at + 4, 2, pend);
        PUT32(ctx, sport, sport);
        PUT32(ctx, dport, dport);
        PUT32(ctx, udp_len, udp_len);
        PUT32(ctx, udp_csum, U(ctx, at + 6, 2, pend));
        if (udp_len >= 8) SET32(ctx, l4_payload_len, udp_len - 8);
        if (depth == 0 && at + 8 <= pend) udp_payload(ctx, at + 8, pend, sport, dport, udp_len);
        return;
    }
    if (proto == 6) {
        int64_t sport = U(ctx, at, 2, pend), dport = U(ctx, at + 2, 2, pend), seq = U(ctx, at + 4, 4, pend);
        PUT32(ctx, sport, sport);
        PUT32(ctx, dport, dport);
        PUT64(ctx, tcp_seq, seq);
        PUT64(ctx, tcp_ack, U(ctx, at + 8, 4, pend));
        PUT16(ctx, tcp_flags, U(ctx, at + 13, 1, pend));
        if (at + 13 > pend) return;
        int64_t data_off = (int64_t)(ctx->b[at + 12] >> 4) * 4;
        int64_t payload_len = ip_payload - data_off;
        if (data_off < 20 || ip_payload < 0 || payload_len < 0) payload_len = -1;
        SET32(ctx, l4_payload_len, payload_len);
        int weave = sport == ctx->weave_port || dport == ctx->weave_port;
        if (depth == 0 && whole && weave && payload_len > 0 && at + 20 <= pend) {
            int64_t begin = at + data_off;
            int64_t end = begin + payload_len < pend ? begin + payload_len : pend;
            if (end < begin) end = begin;
            int64_t *c = ctx->ctl + 5 * ctx->n_ctl++;
            c[0] = ctx->row;
            c[1] = seq;
            c[2] = ctx->base + begin;
            c[3] = ctx->base + end;
            c[4] = payload_len;
        }
        return;
    }
    if ((proto == 1 && ipv == 4) || (proto == 58 && ipv == 6)) {
        int64_t type = U(ctx, at, 1, pend), code = U(ctx, at + 1, 1, pend);
        PUT16(ctx, icmp_type, type);
        PUT16(ctx, icmp_code, code);
        if (ipv == 4) {
            if (type == 3 && code == 4) PUT32(ctx, icmp_mtu, U(ctx, at + 6, 2, pend));
            if (type == 3 || type == 4 || type == 5 || type == 11 || type == 12) quote(ctx, at + 8, pend);
        } else {
            if (type == 2) {
                int64_t mtu = U(ctx, at + 4, 4, pend);
                if (mtu >= 0) SET32(ctx, icmp_mtu, mtu > INT32_MAX ? INT32_MAX : mtu);
            }
            if (type >= 1 && type <= 4) quote(ctx, at + 8, pend);
        }
        return;
    }
    if ((proto == 4 || proto == 41) && depth == 0) ip_in_ip(ctx, at, proto, pend);
}

/* --- the datagram quoted by an ICMP error --- */
static void quote(Ctx *ctx, int64_t q, int64_t pend) {
    if (q >= pend) return;
    int version = ctx->b[q] >> 4;
    int64_t at = -1, proto = -1;
    if (version == 4) {
        SET8(ctx, q_ip_version, 4);
        int64_t ihl = (int64_t)(ctx->b[q] & 0x0F) * 4;
        PUT32(ctx, q_ip_len, U(ctx, q + 2, 2, pend));
        PUT64(ctx, q_ip_id, U(ctx, q + 4, 2, pend));
        int64_t flags = U(ctx, q + 6, 2, pend);
        if (flags >= 0) SETB(ctx, q_ip_df, flags & 0x4000);
        proto = U(ctx, q + 9, 1, pend);
        PUT16(ctx, q_ip_proto, proto);
        if (q + 16 <= pend) set_text(ctx, T_q_ip_src, q + 12, 0);
        if (q + 20 <= pend) set_text(ctx, T_q_ip_dst, q + 16, 0);
        if (ihl >= 20 && flags >= 0 && !(flags & 0x1FFF)) at = q + ihl;
    } else if (version == 6) {
        SET8(ctx, q_ip_version, 6);
        int64_t payload_len = U(ctx, q + 4, 2, pend);
        if (payload_len >= 0) SET32(ctx, q_ip_len, payload_len + 40);
        if (q + 24 <= pend) set_text(ctx, T_q_ip_src, q + 8, 1);
        if (q + 40 > pend) return;
        set_text(ctx, T_q_ip_dst, q + 24, 1);
        Walk w;
        walk_ipv6(ctx, ctx->b[q + 6], q + 40, pend, &w);
        if (w.frag_data >= 0) SET64(ctx, q_ip_id, w.frag_id);
        if (w.proto < 0) return;
        proto = w.proto;
        SET16(ctx, q_ip_proto, proto);
        if (w.frag_off == 0) at = w.upper;
    } else {
        return;
    }
    if (at < 0 || (proto != 17 && proto != 6) || at + 4 > pend) return;
    int64_t dport = (int64_t)R(ctx, at + 2, 2);
    SET32(ctx, q_sport, (int64_t)R(ctx, at, 2));
    SET32(ctx, q_dport, dport);
    if (proto != 17 || !in_ports(ctx->vxlan_ports, ctx->n_vxlan, dport) || at + 16 > pend) return;
    SET64(ctx, q_vxlan_vni, R(ctx, at + 12, 3));
    int64_t inner = at + 16;
    if (inner + 14 <= pend && zero14(ctx, inner)) SETB(ctx, q_inner_zero_eth, 1);
}

/* --- IP --- */
static void ipv4(Ctx *ctx, int64_t l3, int64_t cap) {
    const uint8_t *b = ctx->b;
    if (l3 >= cap || b[l3] >> 4 != 4) return;
    int64_t ihl = (int64_t)(b[l3] & 0x0F) * 4;
    SET8(ctx, ip_version, 4);
    SET16(ctx, ip_hdr_len, ihl);
    int64_t ip_len, ip_id, flags, ttl, proto;
    if (l3 + 20 <= cap) {
        ip_len = (int64_t)R(ctx, l3 + 2, 2);
        ip_id = (int64_t)R(ctx, l3 + 4, 2);
        flags = (int64_t)R(ctx, l3 + 6, 2);
        ttl = b[l3 + 8];
        proto = b[l3 + 9];
        set_text(ctx, T_ip_src, l3 + 12, 0);
        set_text(ctx, T_ip_dst, l3 + 16, 0);
    } else {
        ip_len = U(ctx, l3 + 2, 2, cap);
        ip_id = U(ctx, l3 + 4, 2, cap);
        flags = U(ctx, l3 + 6, 2, cap);
        ttl = U(ctx, l3 + 8, 1, cap);
        proto = U(ctx, l3 + 9, 1, cap);
        if (l3 + 16 <= cap) set_text(ctx, T_ip_src, l3 + 12, 0);
    }
    PUT32(ctx, ip_len, ip_len);
    PUT64(ctx, ip_id, ip_id);
    PUT16(ctx, ip_ttl, ttl);
    PUT16(ctx, ip_proto, proto);
    int64_t frag_off = -1;
    int more = 0;
    if (flags >= 0) {
        frag_off = (flags & 0x1FFF) * 8;
        more = (flags & 0x2000) != 0;
        SETB(ctx, ip_df, flags & 0x4000);
        SETB(ctx, ip_mf, more);
        SET32(ctx, ip_frag_off, frag_off);
    }
    int header_ok = ihl >= 20 && l3 + ihl <= cap;
    int64_t pend = (ihl >= 20 && ip_len >= ihl) ? (cap < l3 + ip_len ? cap : l3 + ip_len) : cap;
    int is_fragment = flags >= 0 && (more || frag_off > 0);
    if (is_fragment) {
        if (ihl >= 20)
            fragment(ctx, l3 + ihl, pend);
        else
            fragment(ctx, 0, 0);
    }
    if (header_ok && frag_off == 0 && proto >= 0) {
        int64_t ip_payload = ip_len >= 0 ? ip_len - ihl : -1;
        l4(ctx, l3 + ihl, proto, 4, pend, ip_payload, 0, !is_fragment);
    }
}

static void ipv6(Ctx *ctx, int64_t l3, int64_t cap) {
    const uint8_t *b = ctx->b;
    if (l3 >= cap || b[l3] >> 4 != 6) return;
    SET8(ctx, ip_version, 6);
    int64_t payload_len = U(ctx, l3 + 4, 2, cap);
    if (payload_len >= 0) SET32(ctx, ip_len, payload_len + 40);
    int64_t nh = U(ctx, l3 + 6, 1, cap);
    PUT16(ctx, ip_ttl, U(ctx, l3 + 7, 1, cap));
    if (l3 + 24 <= cap) set_text(ctx, T_ip_src, l3 + 8, 1);
    if (l3 + 40 <= cap) set_text(ctx, T_ip_dst, l3 + 24, 1);
    if (nh < 0 || l3 + 40 > cap) return;
    int64_t pend = payload_len > 0 ? (cap < l3 + 40 + payload_len ? cap : l3 + 40 + payload_len) : cap;
    Walk w;
    walk_ipv6(ctx, nh, l3 + 40, pend, &w);
    int is_fragment = 0;
    if (w.frag_data >= 0) {
        SET64(ctx, ip_id, w.frag_id);
        SETB(ctx, ip_mf, w.frag_mf);
        if (w.frag_mf || w.frag_off > 0) {
            is_fragment = 1;
            fragment(ctx, w.frag_data, pend);
        }
    }
    if (w.proto < 0) return;
    SET32(ctx, ip_frag_off, w.frag_off);
    SET16(ctx, ip_proto, w.proto);
    SET16(ctx, ip_hdr_len, w.upper - l3);
    if (w.frag_off == 0) {
        int64_t ip_payload = payload_len + 40 - (w.upper - l3);
        l4(ctx, w.upper, w.proto, 6, pend, ip_payload, 0, !is_fragment);
    }
}

/* --- link layer: the network header's offset and the ethertype to dispatch on, or -1 --- */
static int64_t link_layer(Ctx *ctx, int64_t lt, int64_t cap, int64_t *ethertype) {
    const uint8_t *b = ctx->b;
    *ethertype = -1;
    if (lt == 1) {
        if (cap < 14) return -1;
        SETU(ctx, eth_dst, R(ctx, 0, 6));
        SETU(ctx, eth_src, R(ctx, 6, 6));
        int64_t et = (int64_t)R(ctx, 12, 2);
        int64_t pos = 14;
        int tags = 0;
        while ((et == 0x8100 || et == 0x88A8 || et == 0x9100) && tags < MAX_VLAN_TAGS) {
            if (pos + 4 > cap) return -1;
            if (tags == 0) SET32(ctx, vlan, (int64_t)R(ctx, pos, 2) & 0xFFF);
            et = (int64_t)R(ctx, pos + 2, 2);
            pos += 4;
            tags++;
        }
        SET32(ctx, ethertype, et);
        SET32(ctx, l3_off, pos);
        *ethertype = et;
        return pos;
    }
    if (lt == 113) {
        if (cap < 16) return -1;
        SET8(ctx, pkt_dir, (int64_t)R(ctx, 0, 2));
        if (R(ctx, 4, 2) == 6) SETU(ctx, eth_src, R(ctx, 6, 6));
        int64_t et = (int64_t)R(ctx, 14, 2);
        SET32(ctx, ethertype, et);
        SET32(ctx, l3_off, 16);
        *ethertype = et;
        return 16;
    }
    if (lt == 276) {
        if (cap < 20) return -1;
        int64_t et = (int64_t)R(ctx, 0, 2);
        SET8(ctx, pkt_dir, b[10]);
        if (b[11] == 6) SETU(ctx, eth_src, R(ctx, 12, 6));
        SET32(ctx, ethertype, et);
        SET32(ctx, l3_off, 20);
        *ethertype = et;
        return 20;
    }
    if (lt == 101 || lt == 12 || lt == 228 || lt == 229) {
        if (cap < 1) return -1;
        if (lt == 228) {
            *ethertype = ETH_IPV4;
        } else if (lt == 229) {
            *ethertype = ETH_IPV6;
        } else {
            int version = b[0] >> 4;
            *ethertype = version == 4 ? ETH_IPV4 : version == 6 ? ETH_IPV6 : -1;
        }
        SET32(ctx, l3_off, 0); /* no ethertype on the wire: the column stays -1 */
        return 0;
    }
    if (lt == 0 || lt == 108) {
        if (cap < 4) return -1;
        int64_t family = (int64_t)R(ctx, 0, 4);
        if (lt == 0) { /* the capturing host's byte order: the small reading is the right one */
            int64_t little = (int64_t)b[0] | ((int64_t)b[1] << 8) | ((int64_t)b[2] << 16) | ((int64_t)b[3] << 24);
            if (little <= 0xFFFF) family = little;
        }
        *ethertype = family == 2 ? ETH_IPV4 : (family == 24 || family == 28 || family == 30) ? ETH_IPV6 : -1;
        SET32(ctx, l3_off, 4);
        return 4;
    }
    return -1;
}

/* --- the Python entry point --- */
static const char *column_names[N_COLUMNS] = {
#define X(name, type, missing) #name,
    CORE_COLUMNS(X)
#undef X
};
static const Py_ssize_t column_sizes[N_COLUMNS] = {
#define X(name, type, missing) sizeof(type),
    CORE_COLUMNS(X)
#undef X
};
static const char *text_names[N_TEXTS] = {
#define X(name) #name,
    TEXT_COLUMNS(X)
#undef X
};

static int ports_from(PyObject *seq, long *out, int *n) {
    PyObject *fast = PySequence_Fast(seq, "ports must be a sequence");
    if (!fast) return -1;
    Py_ssize_t size = PySequence_Fast_GET_SIZE(fast);
    if (size > MAX_PORTS) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "too many ports");
        return -1;
    }
    for (Py_ssize_t k = 0; k < size; k++) {
        out[k] = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, k));
        if (out[k] == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
    }
    *n = (int)size;
    Py_DECREF(fast);
    return 0;
}

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t items, int writable,
                      const char *what) {
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != itemsize || (items >= 0 && view->len != itemsize * items)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of %zd bytes, got %zd bytes of items of %zd", what,
                     items, itemsize, view->len, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(decode_doc,
             "decode(data, offsets, caplen, linktype, columns, texts, vxlan_ports, geneve_ports, fastdp_port,\n"
             "       weave_port, fragments, control) -> (n_fragments, n_control)\n\n"
             "Decode every frame of a chunk into the preallocated columns (in COLUMNS order); texts holds the\n"
             "addresses of the C-contiguous object arrays of TEXT_COLUMNS (len(offsets) items each, all str).");

static PyObject *core_decode(PyObject *self, PyObject *args) {
    PyObject *data_o, *off_o, *cap_o, *lt_o, *cols_o, *texts_o, *vx_o, *gen_o, *frag_o, *ctl_o;
    long fastdp_port, weave_port;
    if (!PyArg_ParseTuple(args, "OOOOOOOOllOO", &data_o, &off_o, &cap_o, &lt_o, &cols_o, &texts_o, &vx_o, &gen_o,
                          &fastdp_port, &weave_port, &frag_o, &ctl_o))
        return NULL;
    Ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.fastdp_port = fastdp_port;
    ctx.weave_port = weave_port;
    if (ports_from(vx_o, ctx.vxlan_ports, &ctx.n_vxlan) < 0 || ports_from(gen_o, ctx.geneve_ports, &ctx.n_geneve) < 0)
        return NULL;
    Py_buffer data = {0}, off = {0}, cap = {0}, lt = {0}, frag = {0}, ctl = {0};
    Py_buffer cols[N_COLUMNS];
    int n_cols = 0;
    PyObject *result = NULL;
    if (get_buffer(data_o, &data, 1, -1, 0, "data") < 0) return NULL;
    if (get_buffer(off_o, &off, 8, -1, 0, "offsets") < 0) goto done;
    Py_ssize_t n = off.len / 8;
    if (get_buffer(cap_o, &cap, 4, n, 0, "caplen") < 0) goto done;
    if (get_buffer(lt_o, &lt, 2, n, 0, "linktype") < 0) goto done;
    if (get_buffer(frag_o, &frag, 8, 3 * n, 1, "fragments") < 0) goto done;
    if (get_buffer(ctl_o, &ctl, 8, 5 * n, 1, "control") < 0) goto done;
    if (!PyTuple_Check(cols_o) || PyTuple_GET_SIZE(cols_o) != N_COLUMNS) {
        PyErr_Format(PyExc_ValueError, "columns: expected a tuple of %d arrays", N_COLUMNS);
        goto done;
    }
    for (; n_cols < N_COLUMNS; n_cols++) {
        if (get_buffer(PyTuple_GET_ITEM(cols_o, n_cols), &cols[n_cols], column_sizes[n_cols], n, 1,
                       column_names[n_cols]) < 0)
            goto done;
        ctx.col[n_cols] = cols[n_cols].buf;
    }
    if (!PyTuple_Check(texts_o) || PyTuple_GET_SIZE(texts_o) != N_TEXTS) {
        PyErr_Format(PyExc_ValueError, "texts: expected a tuple of %d addresses", N_TEXTS);
        goto done;
    }
    for (int t = 0; t < N_TEXTS; t++) {
        ctx.text[t] = PyLong_AsVoidPtr(PyTuple_GET_ITEM(texts_o, t));
        if (!ctx.text[t]) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "texts: null address");
            goto done;
        }
    }
    if (cache_init(&ctx.cache4) < 0 || cache_init(&ctx.cache6) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    ctx.frag = frag.buf;
    ctx.ctl = ctl.buf;
    const uint8_t *bytes = data.buf;
    const int64_t *offsets = off.buf;
    const int32_t *caps = cap.buf;
    const int16_t *lts = lt.buf;
    for (Py_ssize_t i = 0; i < n && !ctx.failed; i++) {
        if (i + PREFETCH_AHEAD < n) { /* frames are far apart: fetch the headers of a later one meanwhile */
            int64_t ahead = offsets[i + PREFETCH_AHEAD];
            if (ahead >= 0 && ahead + 128 <= data.len) {
                __builtin_prefetch(bytes + ahead);
                __builtin_prefetch(bytes + ahead + 64);
            }
        }
        int64_t start = offsets[i];
        int64_t length = caps[i];
        /* a frame reaching past the buffer is decoded as far as the buffer goes, like a Python slice */
        if (start < 0 || start > data.len) start = data.len;
        if (length < 0) length = 0;
        if (length > data.len - start) length = data.len - start;
        ctx.b = bytes + start;
        ctx.base = start;
        ctx.row = i;
        int64_t ethertype;
        int64_t l3 = link_layer(&ctx, lts[i], length, &ethertype);
        if (l3 < 0) continue;
        if (ethertype == ETH_IPV4)
            ipv4(&ctx, l3, length);
        else if (ethertype == ETH_IPV6)
            ipv6(&ctx, l3, length);
    }
    if (ctx.failed) goto done;
    result = Py_BuildValue("(nn)", ctx.n_frag, ctx.n_ctl);
done:
    cache_free(&ctx.cache4);
    cache_free(&ctx.cache6);
    for (int k = 0; k < n_cols; k++) PyBuffer_Release(&cols[k]);
    if (data.obj) PyBuffer_Release(&data);
    if (off.obj) PyBuffer_Release(&off);
    if (cap.obj) PyBuffer_Release(&cap);
    if (lt.obj) PyBuffer_Release(&lt);
    if (frag.obj) PyBuffer_Release(&frag);
    if (ctl.obj) PyBuffer_Release(&ctl);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", core_decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_core", "weavepcap's compiled decode core (the per-packet reference, in C).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__core(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *names = PyTuple_New(N_COLUMNS);
    PyObject *tnames = PyTuple_New(N_TEXTS);
    if (!names || !tnames) goto fail;
    for (int k = 0; k < N_COLUMNS; k++) PyTuple_SET_ITEM(names, k, PyUnicode_FromString(column_names[k]));
    for (int k = 0; k < N_TEXTS; k++) PyTuple_SET_ITEM(tnames, k, PyUnicode_FromString(text_names[k]));
    if (PyModule_AddObject(m, "COLUMNS", names) < 0) goto fail;
    names = NULL;
    if (PyModule_AddObject(m, "TEXT_COLUMNS", tnames) < 0) goto fail;
    return m;
fail:
    Py_XDECREF(names);
    Py_XDECREF(tnames);
    Py_DECREF(m);
    return NULL;
}
