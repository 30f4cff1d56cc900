package monitor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop reads containers' output into a staging buffer that is a shared
// mapping of ROOT/monitor.staging, and says there whose output it holds
// until the log has it. A monitor killed between a read and the log's
// write leaves that output in the file (the page cache keeps a shared
// mapping's stores), and the next monitor writes it to the container's log
// when it adopts the container: what was read is not lost. (A read empties
// the pipe: without this, the lines of one read were lost.)
//
// The header: the length held (0: none; stagingReading: a read is under
// way), stored last and cleared once the log has the data; the stream's
// name; the container's id; the log file's size before the data's write,
// plus one (0: not known).
//
// A SIGKILL that comes while the monitor is in a system call takes effect
// as the call returns. In read(2): the data is copied and its length never
// stored, so the buffer is zeroed before each read, and the length of what
// a read under way left is where the zeros begin (output that ends in NUL
// bytes loses those bytes in that case). In the log's write(2): the log
// grew past the size held, and the next monitor does not write the data
// again.
const (
	stagingLen      = 0   // uint32
	stagingStream   = 4   // length byte, then up to 11 bytes
	stagingID       = 16  // length byte, then up to 103 bytes
	stagingLogSize  = 120 // uint64, little-endian
	stagingHeader   = 128
	stagingCapacity = 64 << 10
	stagingReading  = ^uint32(0)
)

// staging is the mapped file; nil mem means a plain buffer (the file could
// not be mapped: output is then only as safe as before). It is never
// unmapped: the loop may read into it until the process ends or execs.
type staging struct {
	mem []byte
	buf []byte
	// dirty is how much of buf the last read filled: zeroed before the
	// next.
	dirty int
}

// staged is output a killed monitor had read and not yet logged, unless
// its log grew past logSize-1 (logSize 0: not known).
type staged struct {
	id, stream string
	data       []byte
	logSize    uint64
}

// logged says whether the log at path holds s's data already.
func (s *staged) logged(path string) bool {
	if s.logSize == 0 {
		return false
	}
	st, err := os.Stat(path)
	return err == nil && st.Size() > int64(s.logSize-1)
}

// openStaging maps ROOT/monitor.staging and returns what a previous monitor
// left in it, if anything. The monitor's lock must be held.
func openStaging(root string) (*staging, *staged, error) {
	f, err := os.OpenFile(filepath.Join(root, "monitor.staging"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	size := stagingHeader + stagingCapacity
	if err := f.Truncate(int64(size)); err != nil {
		return nil, nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	st := &staging{mem: mem, buf: mem[stagingHeader:]}
	var left *staged
	n := st.length().Load()
	if n == stagingReading {
		n = uint32(len(bytes.TrimRight(st.buf, "\x00")))
	}
	if n > 0 && n <= stagingCapacity {
		left = &staged{
			stream:  string(field(mem[stagingStream:stagingID])),
			id:      string(field(mem[stagingID:stagingLogSize])),
			data:    append([]byte(nil), st.buf[:n]...),
			logSize: binary.LittleEndian.Uint64(mem[stagingLogSize:stagingHeader]),
		}
	}
	st.length().Store(0)
	clear(st.buf)
	return st, left, nil
}

// plainStaging is a buffer that survives nothing.
func plainStaging() *staging { return &staging{buf: make([]byte, stagingCapacity)} }

func (st *staging) length() *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&st.mem[stagingLen]))
}

// reading says that a read of id's output on stream into buf is under
// way, buf zeroed.
func (st *staging) reading(id, stream string) {
	if st.mem == nil {
		return
	}
	clear(st.buf[:st.dirty])
	st.dirty = 0
	putField(st.mem[stagingStream:stagingID], stream)
	putField(st.mem[stagingID:stagingLogSize], id)
	binary.LittleEndian.PutUint64(st.mem[stagingLogSize:stagingHeader], 0)
	st.length().Store(stagingReading)
}

// hold says that buf[:n], which the read under way returned, is not yet
// in the log, now logSize bytes long.
func (st *staging) hold(n int, logSize int64) {
	if st.mem == nil {
		return
	}
	st.dirty = n
	binary.LittleEndian.PutUint64(st.mem[stagingLogSize:stagingHeader], uint64(logSize)+1)
	st.length().Store(uint32(n))
}

// release says that the log has what was held.
func (st *staging) release() {
	if st.mem != nil {
		st.length().Store(0)
	}
}

// field is a length-prefixed string of b.
func field(b []byte) []byte {
	n := int(b[0])
	if n > len(b)-1 {
		n = len(b) - 1
	}
	return b[1 : 1+n]
}

func putField(b []byte, s string) {
	n := copy(b[1:], s)
	b[0] = byte(n)
}
