package tflocal

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ProviderAddress is the provider's registry address; modules require it as
// source = "wsdirect/wsdirect".
const ProviderAddress = "registry.terraform.io/wsdirect/wsdirect"

// Build is the freshly built binaries and the provider, installed in a filesystem mirror.
type Build struct {
	// BinDir holds wsdirect-node, wsdirect-auth and wsdirect-localcloud.
	BinDir string
	// MirrorDir is a Terraform filesystem mirror holding the provider (unpacked layout:
	// <mirror>/registry.terraform.io/wsdirect/wsdirect/<version>/<os>_<arch>/).
	MirrorDir string
	// CLIConfig is a Terraform CLI configuration file that installs wsdirect/wsdirect from
	// MirrorDir (and nothing else, from nowhere else): what TF_CLI_CONFIG_FILE points at.
	CLIConfig string
	// Version is the provider's and the release's version.
	Version string
}

// BuildAll compiles wsdirect-node, wsdirect-auth and wsdirect-localcloud from the module at
// repoDir into <workDir>/bin, and the provider (with main.version = version) into a
// filesystem mirror under <workDir>/terraform, and writes the CLI configuration that uses
// it. Terraform's filesystem mirrors skip version 0.0.0, so version must be another one.
func BuildAll(ctx context.Context, repoDir, workDir, version string) (*Build, error) {
	if version == "" || version == "0.0.0" || strings.HasPrefix(version, "v") {
		return nil, fmt.Errorf("tflocal: provider version %q: give a release version without a leading v, not 0.0.0", version)
	}
	b := &Build{
		BinDir:    filepath.Join(workDir, "bin"),
		MirrorDir: filepath.Join(workDir, "terraform", "plugins"),
		CLIConfig: filepath.Join(workDir, "terraform", "terraformrc"),
		Version:   version,
	}
	platform := runtime.GOOS + "_" + runtime.GOARCH
	provider := filepath.Join(b.MirrorDir, ProviderAddress, version, platform, "terraform-provider-wsdirect_v"+version)
	for _, d := range []string{b.BinDir, filepath.Dir(provider)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := goBuild(ctx, repoDir, b.BinDir+string(filepath.Separator), nil,
		"./cmd/wsdirect-node", "./cmd/wsdirect-auth", "./cmd/wsdirect-localcloud"); err != nil {
		return nil, err
	}
	if err := goBuild(ctx, repoDir, provider, []string{"-ldflags", "-X main.version=" + version}, "."); err != nil {
		return nil, err
	}
	if err := os.WriteFile(b.CLIConfig, []byte(CLIConfig(b.MirrorDir)), 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

// CLIConfig is a Terraform CLI configuration that installs wsdirect/wsdirect from a filesystem
// mirror, with no dev_overrides: `terraform init` then works as with the registry.
func CLIConfig(mirror string) string {
	return fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = [%q]
  }
}
`, mirror, ProviderAddress)
}

// goBuild runs `go build -o out [flags] pkgs...` in dir with $GOROOT/bin/go when GOROOT is
// set, else the go on PATH (make runs the tests with it there).
func goBuild(ctx context.Context, dir, out string, flags []string, pkgs ...string) error {
	goBin := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		goBin = filepath.Join(root, "bin", "go")
	}
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, goBin, append(args, pkgs...)...)
	cmd.Dir = dir
	raw, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("tflocal: go build %s: %w\n%s", strings.Join(pkgs, " "), err, strings.TrimSpace(string(raw)))
	}
	return nil
}
