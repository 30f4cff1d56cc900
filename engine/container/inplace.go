package container

import "os"

// writeInPlace writes b over the file at path, made with perm if missing,
// keeping its inode: a container's /etc files are bind-mounted, and a
// replaced file would leave the mount on the old one. It does not open
// with O_TRUNC: ext4 marks a file truncated to zero for writeback at its
// close (auto_da_alloc), which would cost an I/O per file at every start.
// What is left of a longer content is cut after the write.
func writeInPlace(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, perm)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil && st.Size() > int64(len(b)) {
		err = f.Truncate(int64(len(b)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
