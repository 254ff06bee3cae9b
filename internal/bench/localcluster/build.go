package localcluster

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Packages of the binaries a local cluster runs.
const (
	NodePackage = "github.com/wsdirect/terraform-provider-wsdirect/cmd/wsdirect-node"
	AuthPackage = "github.com/wsdirect/terraform-provider-wsdirect/cmd/wsdirect-auth"
)

// BuildBinaries compiles wsdirect-node and wsdirect-auth into outDir with
// the go command on PATH: under go test that is the toolchain running the
// tests, which puts its own GOROOT/bin first on PATH. It must run inside the
// module (tests do). Tests use it so that they exercise the current code,
// not whatever sits in ./bin.
func BuildBinaries(ctx context.Context, outDir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("localcluster: no go command on PATH to build the binaries: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", outDir+string(filepath.Separator), NodePackage, AuthPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("localcluster: go build: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
