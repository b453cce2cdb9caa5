// A compiled driver of a Verilated design, loaded from Python with ctypes (sim/fast/model.py).
//
// Generic over the design's ports: the generated "ports.h" binds each top-level port, in the
// order Python parsed them from the Verilog, to its storage in the model (WG_BIND_PORTS).
// Python names the ports each job uses by index, so nothing here knows the core.
//
// Cycles follow the cocotb benches: in cycle c the outputs are sampled first (what the
// falling edge before rising edge c sees), then the inputs of cycle c are set, then the
// clock rises and falls. A beat taken by a stream is one whose valid and ready were both
// set in the same cycle.
#include <cstdint>
#include <cstring>
#include <vector>

#include "verilated.h"
#include "ports.h"

namespace {

struct Port {
    uint8_t* ptr;
    int bytes;
};

// Where one lane's fields sit in a beat (bit offsets from the lane's start).
struct Lanes {
    int width, bits, data, keep, first, last, error;
};

struct FrameIn {
    int64_t start;      // cycle of the first beat
    size_t offset;      // into Ingress::data
    int32_t length;
    int32_t error;
};

struct Ingress {
    int valid = -1, payload = -1;
    std::vector<uint8_t> data;
    std::vector<FrameIn> frames;
    size_t next = 0;        // the frame being sent or next to send
    int32_t sent = 0;       // its bytes already on the wire
    bool driving = false;
};

struct Egress {
    int valid = -1, payload = -1, ready = -1;
    bool frames = true;                 // frames (first/last) or raw kept bytes
    bool plain = false;                 // the payload is one byte, not a beat of lanes
    uint64_t ready_threshold = ~0ull;   // ready when hash(seed, cycle) < threshold
    uint64_t ready_seed = 0;
    std::vector<uint8_t> bytes;
    std::vector<int64_t> info;          // per frame: first-byte cycle, end offset, error
    bool open = false;
    int64_t taken = 0;                  // bytes taken since creation
    int64_t protocol_errors = 0;        // a byte outside a frame, a first inside one
};

// A byte stream into the design (the control port's input): bytes queued from Python, each
// held on the port until the design is ready for it.
struct Feed {
    int valid = -1, payload = -1, ready = -1;
    std::vector<uint8_t> bytes;
    size_t next = 0;
    bool driving = false;
};

struct Harness {
    VerilatedContext* context;
    WG_TOP* top;
    std::vector<Port> ports;
    int clk = -1;
    int engine_clk = -1;    // the half-rate engine's clock, or none
    int64_t cycle = 0;
    Lanes lanes{};
    Ingress ingress[2];
    Egress egress[3];
    Feed feed;
    // The word bus: a queue of writes from a cycle on, each taken when write_ready.
    int write_en = -1, write_addr = -1, write_data = -1, write_ready = -1;
    std::vector<uint32_t> writes;       // (address, word) pairs
    size_t write_next = 0;
    int64_t write_start = 0;
    int64_t write_done = -1;            // cycle after the last write was taken
    bool write_driving = false;
};

uint64_t mix(uint64_t x) {      // splitmix64's finaliser (sim/fast/pace.py has the same)
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void set_bits(uint8_t* word, int offset, int width, uint32_t value) {
    for (int k = 0; k < width; ++k) {
        int bit = offset + k;
        uint8_t mask = uint8_t(1u << (bit & 7));
        if (value >> k & 1) word[bit >> 3] |= mask;
        else word[bit >> 3] &= uint8_t(~mask);
    }
}

uint32_t get_bits(const uint8_t* word, int offset, int width) {
    uint32_t value = 0;
    for (int k = 0; k < width; ++k) {
        int bit = offset + k;
        value |= uint32_t(word[bit >> 3] >> (bit & 7) & 1) << k;
    }
    return value;
}

void poke1(Harness* h, int port, uint32_t value) {
    Port& p = h->ports[port];
    std::memset(p.ptr, 0, p.bytes);
    std::memcpy(p.ptr, &value, p.bytes < 4 ? p.bytes : 4);
}

uint32_t peek1(Harness* h, int port) {
    uint32_t value = 0;
    Port& p = h->ports[port];
    std::memcpy(&value, p.ptr, p.bytes < 4 ? p.bytes : 4);
    return value;
}

// Egress: sample one beat (cycle c) if valid (and ready).
void sample(Harness* h, Egress& e) {
    bool ready = true;
    if (e.ready >= 0) {
        ready = e.ready_threshold == ~0ull ||     // the largest threshold: always ready
                mix(e.ready_seed ^ uint64_t(h->cycle)) < e.ready_threshold;
        poke1(h, e.ready, ready);
    }
    if (!ready || !peek1(h, e.valid)) return;
    const uint8_t* word = h->ports[e.payload].ptr;
    if (e.plain) {
        e.bytes.push_back(word[0]);
        ++e.taken;
        return;
    }
    const Lanes& L = h->lanes;
    for (int lane = 0; lane < L.width; ++lane) {
        int base = lane * L.bits;
        if (!get_bits(word, base + L.keep, 1)) continue;
        uint8_t byte = uint8_t(get_bits(word, base + L.data, 8));
        ++e.taken;
        if (!e.frames) {
            e.bytes.push_back(byte);
            continue;
        }
        if (get_bits(word, base + L.first, 1)) {
            if (e.open) ++e.protocol_errors;
            e.open = true;
            e.info.push_back(h->cycle);
            e.info.push_back(0);
            e.info.push_back(0);
        } else if (!e.open) {
            ++e.protocol_errors;
            continue;
        }
        e.bytes.push_back(byte);
        if (get_bits(word, base + L.last, 1)) {
            e.open = false;
            size_t n = e.info.size();
            e.info[n - 2] = int64_t(e.bytes.size());
            e.info[n - 1] = get_bits(word, base + L.error, 1);
        }
    }
}

// Ingress: drive cycle c's beat (or idle).
void drive(Harness* h, Ingress& in) {
    if (in.valid < 0) return;
    if (in.next >= in.frames.size() || in.frames[in.next].start > h->cycle) {
        if (in.driving) {
            poke1(h, in.valid, 0);
            in.driving = false;
        }
        return;
    }
    const FrameIn& f = in.frames[in.next];
    const Lanes& L = h->lanes;
    Port& p = h->ports[in.payload];
    std::memset(p.ptr, 0, p.bytes);
    for (int lane = 0; lane < L.width && in.sent < f.length; ++lane, ++in.sent) {
        int base = lane * L.bits;
        set_bits(p.ptr, base + L.data, 8, in.data[f.offset + in.sent]);
        set_bits(p.ptr, base + L.keep, 1, 1);
        set_bits(p.ptr, base + L.first, 1, in.sent == 0);
        bool last = in.sent == f.length - 1;
        set_bits(p.ptr, base + L.last, 1, last);
        set_bits(p.ptr, base + L.error, 1, last && f.error);
    }
    if (!in.driving) {
        poke1(h, in.valid, 1);
        in.driving = true;
    }
    if (in.sent == f.length) {
        ++in.next;
        in.sent = 0;
        if (in.next == in.frames.size()) {      // all sent: start the buffers afresh
            in.frames.clear();
            in.data.clear();
            in.next = 0;
        }
    }
}

void bus(Harness* h) {
    if (h->write_en < 0) return;
    bool pending = h->write_next < h->writes.size() / 2 && h->cycle >= h->write_start;
    if (pending && peek1(h, h->write_ready)) {
        poke1(h, h->write_addr, h->writes[2 * h->write_next]);
        poke1(h, h->write_data, h->writes[2 * h->write_next + 1]);
        poke1(h, h->write_en, 1);
        h->write_driving = true;
        if (++h->write_next == h->writes.size() / 2) h->write_done = h->cycle + 1;
    } else if (h->write_driving) {
        poke1(h, h->write_en, 0);
        h->write_driving = false;
    }
}

// The feed: drive cycle c's byte; it is taken if the design is ready for it in cycle c
// (ready is read after the inputs settle, in case it depends on them).
void feed(Harness* h) {
    Feed& f = h->feed;
    if (f.valid < 0) return;
    if (f.next < f.bytes.size()) {
        poke1(h, f.payload, f.bytes[f.next]);
        if (!f.driving) {
            poke1(h, f.valid, 1);
            f.driving = true;
        }
        h->top->eval();
        if (peek1(h, f.ready) && ++f.next == f.bytes.size()) {
            f.bytes.clear();
            f.next = 0;
        }
    } else if (f.driving) {
        poke1(h, f.valid, 0);
        f.driving = false;
    }
}

void tick(Harness* h) {
    *h->ports[h->clk].ptr = 1;
    if (h->engine_clk >= 0) *h->ports[h->engine_clk].ptr ^= 1;   // same eval: aligned edges
    h->top->eval();
    *h->ports[h->clk].ptr = 0;
    h->top->eval();
    ++h->cycle;
}

}  // namespace

extern "C" {

void* wg_new(int clk, int engine_clk) {
    Harness* h = new Harness;
    h->context = new VerilatedContext;
    h->top = new WG_TOP{h->context};
    WG_TOP* t = h->top;
    h->ports.resize(WG_N_PORTS);
    WG_BIND_PORTS(t, h->ports);
    h->clk = clk;
    h->engine_clk = engine_clk;
    *h->ports[clk].ptr = 0;
    if (engine_clk >= 0) *h->ports[engine_clk].ptr = 0;
    t->eval();
    return h;
}

void wg_free(void* handle) {
    Harness* h = static_cast<Harness*>(handle);
    h->top->final();
    delete h->top;
    delete h->context;
    delete h;
}

int wg_port_bytes(void* handle, int port) {
    return static_cast<Harness*>(handle)->ports[port].bytes;
}

void wg_poke(void* handle, int port, const uint8_t* value) {
    Harness* h = static_cast<Harness*>(handle);
    std::memcpy(h->ports[port].ptr, value, h->ports[port].bytes);
}

void wg_peek(void* handle, int port, uint8_t* value) {
    Harness* h = static_cast<Harness*>(handle);
    std::memcpy(value, h->ports[port].ptr, h->ports[port].bytes);
}

int64_t wg_cycle(void* handle) { return static_cast<Harness*>(handle)->cycle; }

void wg_lanes(void* handle, int width, int bits, int data, int keep, int first, int last,
              int error) {
    static_cast<Harness*>(handle)->lanes = Lanes{width, bits, data, keep, first, last, error};
}

void wg_ingress(void* handle, int k, int valid, int payload) {
    Ingress& in = static_cast<Harness*>(handle)->ingress[k];
    in.valid = valid;
    in.payload = payload;
}

// Monitor k takes beats of (valid, payload); ready >= 0: drive ready from the pace
// (threshold / 2**64 of the cycles, chosen by hashing the cycle with seed; all of them at
// 2**64 - 1). mode: 0 the kept bytes of beats, 1 frames of beats, 2 a byte a transfer.
void wg_egress(void* handle, int k, int valid, int payload, int ready, int mode,
               uint64_t seed, uint64_t threshold) {
    Egress& e = static_cast<Harness*>(handle)->egress[k];
    e.valid = valid;
    e.payload = payload;
    e.ready = ready;
    e.frames = mode == 1;
    e.plain = mode == 2;
    e.ready_seed = seed;
    e.ready_threshold = threshold;
}

void wg_bus(void* handle, int write_en, int write_addr, int write_data, int write_ready) {
    Harness* h = static_cast<Harness*>(handle);
    h->write_en = write_en;
    h->write_addr = write_addr;
    h->write_data = write_data;
    h->write_ready = write_ready;
}

// The byte stream (valid, payload, ready) the feed drives.
void wg_feed(void* handle, int valid, int payload, int ready) {
    Feed& f = static_cast<Harness*>(handle)->feed;
    f.valid = valid;
    f.payload = payload;
    f.ready = ready;
}

// Queue bytes on the feed; returns the bytes queued and not yet taken.
int64_t wg_push(void* handle, const uint8_t* data, int64_t length) {
    Feed& f = static_cast<Harness*>(handle)->feed;
    f.bytes.insert(f.bytes.end(), data, data + length);
    return int64_t(f.bytes.size() - f.next);
}

// Queue a frame on ingress port k from cycle start (after the frame before it has ended).
int wg_send(void* handle, int k, const uint8_t* data, int32_t length, int64_t start,
            int32_t error) {
    Harness* h = static_cast<Harness*>(handle);
    Ingress& in = h->ingress[k];
    if (length <= 0 || start < h->cycle) return -1;
    in.frames.push_back(FrameIn{start, in.data.size(), length, error});
    in.data.insert(in.data.end(), data, data + length);
    return 0;
}

// Write (address, word) pairs from cycle start on, one per cycle the bus is ready.
int wg_write(void* handle, const uint32_t* pairs, int32_t n, int64_t start) {
    Harness* h = static_cast<Harness*>(handle);
    if (h->write_next < h->writes.size() / 2 || n <= 0) return -1;
    h->writes.assign(pairs, pairs + 2 * n);
    h->write_next = 0;
    h->write_start = start;
    h->write_done = -1;
    return 0;
}

int64_t wg_write_done(void* handle) { return static_cast<Harness*>(handle)->write_done; }

// Run until cycle `until`; stop early when monitor `watch` has taken `watch_bytes` bytes in
// all (watch < 0: never) or, with stop_on_write, when the write queue is done. Returns the
// cycle reached.
int64_t wg_run(void* handle, int64_t until, int watch, int64_t watch_bytes, int stop_on_write) {
    Harness* h = static_cast<Harness*>(handle);
    while (h->cycle < until) {
        for (Egress& e : h->egress)
            if (e.valid >= 0) sample(h, e);
        for (Ingress& in : h->ingress) drive(h, in);
        bus(h);
        feed(h);
        tick(h);
        if (watch >= 0 && h->egress[watch].taken >= watch_bytes) break;
        if (stop_on_write && h->write_done >= 0) break;
    }
    return h->cycle;
}

// What monitor k has collected since the last call: sizes first (bytes, info words), then,
// with buffers, the data (and the monitor's buffers are emptied).
void wg_collected(void* handle, int k, int64_t* sizes) {
    Egress& e = static_cast<Harness*>(handle)->egress[k];
    size_t complete = e.bytes.size();
    if (e.frames && e.open) complete = e.info.size() >= 6 ? e.info[e.info.size() - 5] : 0;
    sizes[0] = int64_t(complete);
    sizes[1] = int64_t(e.info.size() - (e.frames && e.open ? 3 : 0));
    sizes[2] = e.protocol_errors;
}

void wg_take(void* handle, int k, uint8_t* bytes, int64_t* info) {
    Egress& e = static_cast<Harness*>(handle)->egress[k];
    int64_t sizes[3];
    wg_collected(handle, k, sizes);
    std::memcpy(bytes, e.bytes.data(), sizes[0]);
    std::memcpy(info, e.info.data(), sizes[1] * sizeof(int64_t));
    e.bytes.erase(e.bytes.begin(), e.bytes.begin() + sizes[0]);
    e.info.erase(e.info.begin(), e.info.begin() + sizes[1]);
}

}  // extern "C"
