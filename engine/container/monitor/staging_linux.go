package monitor

import (
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
// The header: the length held (0: none), stored last and cleared once the
// log has the data; the stream's name; the container's id.
const (
	stagingLen      = 0  // uint32
	stagingStream   = 4  // length byte, then up to 11 bytes
	stagingID       = 16 // length byte, then up to 111 bytes
	stagingHeader   = 128
	stagingCapacity = 64 << 10
)

// staging is the mapped file; nil mem means a plain buffer (the file could
// not be mapped: output is then only as safe as before). It is never
// unmapped: the loop may read into it until the process ends or execs.
type staging struct {
	mem []byte
	buf []byte
}

// staged is output a killed monitor had read and not yet logged.
type staged struct {
	id, stream string
	data       []byte
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
	if n := int(st.length().Load()); n > 0 && n <= stagingCapacity {
		left = &staged{
			stream: string(field(mem[stagingStream:stagingID])),
			id:     string(field(mem[stagingID:stagingHeader])),
			data:   append([]byte(nil), st.buf[:n]...),
		}
	}
	st.length().Store(0)
	return st, left, nil
}

// plainStaging is a buffer that survives nothing.
func plainStaging() *staging { return &staging{buf: make([]byte, stagingCapacity)} }

func (st *staging) length() *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&st.mem[stagingLen]))
}

// hold says that buf[:n] is id's output on stream, not yet logged.
func (st *staging) hold(id, stream string, n int) {
	if st.mem == nil {
		return
	}
	putField(st.mem[stagingStream:stagingID], stream)
	putField(st.mem[stagingID:stagingHeader], id)
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
