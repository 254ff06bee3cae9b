package localcloud

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ReleaseProject is goreleaser's project_name, which names the checksum file.
const ReleaseProject = "terraform-provider-wsdirect"

// ReleaseFile is one published archive.
type ReleaseFile struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// ArchiveName is the archive goreleaser builds for a server binary (.goreleaser.yml:
// "<binary>_{{ .Version }}_{{ .Os }}_{{ .Arch }}", format tar.gz), which modules/cluster
// downloads.
func ArchiveName(binary, version, arch string) string {
	return fmt.Sprintf("%s_%s_linux_%s.tar.gz", binary, version, arch)
}

// ChecksumsName is goreleaser's checksum file ("{{ .ProjectName }}_{{ .Version }}_SHA256SUMS").
func ChecksumsName(version string) string {
	return fmt.Sprintf("%s_%s_SHA256SUMS", ReleaseProject, version)
}

// BuildRelease writes into dir one tar.gz per binary, each holding the binary at its root with
// mode 0755 (as goreleaser packs it), and the SHA256SUMS file over them. binaries maps names to
// files. It returns the archives in name order.
func BuildRelease(dir, version, arch string, binaries map[string]string) ([]ReleaseFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(binaries))
	for name := range binaries {
		names = append(names, name)
	}
	slices.Sort(names)
	var files []ReleaseFile
	var sums strings.Builder
	for _, name := range names {
		archive := ArchiveName(name, version, arch)
		sum, err := writeArchive(filepath.Join(dir, archive), name, binaries[name])
		if err != nil {
			return nil, fmt.Errorf("localcloud: release %s: %w", archive, err)
		}
		files = append(files, ReleaseFile{Name: archive, SHA256: sum})
		fmt.Fprintf(&sums, "%s  %s\n", sum, archive)
	}
	if err := os.WriteFile(filepath.Join(dir, ChecksumsName(version)), []byte(sums.String()), 0o644); err != nil {
		return nil, err
	}
	return files, nil
}

// writeArchive packs src as name into a tar.gz at path and returns the archive's hex SHA-256.
func writeArchive(path, name, src string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", src)
	}
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	// Fastest compression: the archive is built at every start, and only its name and
	// checksum matter to the installer.
	zw, err := gzip.NewWriterLevel(io.MultiWriter(out, h), gzip.BestSpeed)
	if err != nil {
		out.Close()
		return "", err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: name, Mode: 0o755, Size: st.Size(), ModTime: st.ModTime().Truncate(time.Second), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		out.Close()
		return "", err
	}
	if _, err := io.Copy(tw, in); err != nil {
		out.Close()
		return "", err
	}
	if err := tw.Close(); err != nil {
		out.Close()
		return "", err
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
