package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Packages of the binaries a local cluster runs.
const (
	NodePackage = "github.com/wsdirect/terraform-provider-wsdirect/cmd/wsdirect-node"
	AuthPackage = "github.com/wsdirect/terraform-provider-wsdirect/cmd/wsdirect-auth"
)

// BuildBinaries compiles wsdirect-node and wsdirect-auth into outDir with
// the go command that runs this program's toolchain. It must run inside the
// module (tests do). Tests use it so that they exercise the current code,
// not whatever sits in ./bin.
func BuildBinaries(ctx context.Context, outDir string) error {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", outDir+string(filepath.Separator), NodePackage, AuthPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("localcluster: go build: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
