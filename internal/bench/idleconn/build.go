package idleconn

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/scavenge"
)

// buildNode compiles wsdirect-node from the module at srcDir into outDir
// with the scavenge hook laid over it (go build -overlay: the package
// internal/bench/scavenge as this harness has it, and one file in the
// node's main package that starts it), and wsdirect-auth too when withAuth.
// The tree at srcDir is not written to.
func buildNode(ctx context.Context, srcDir, outDir string, withAuth bool) error {
	srcDir, err := filepath.Abs(srcDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	ovDir, err := os.MkdirTemp(outDir, "overlay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ovDir)
	files := map[string][]byte{
		filepath.Join(srcDir, "internal", "bench", "scavenge", "scavenge.go"):          scavenge.Source,
		filepath.Join(srcDir, "cmd", "wsdirect-node", "zz_wsdirect_bench_scavenge.go"): []byte(scavenge.Hook),
	}
	replace := map[string]string{}
	i := 0
	for dst, content := range files {
		p := filepath.Join(ovDir, fmt.Sprintf("f%d.go", i))
		i++
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return err
		}
		replace[dst] = p
	}
	// The tree's own _test.go files of the package are left as they are;
	// only a build reads the overlay.
	ov, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		return err
	}
	ovFile := filepath.Join(ovDir, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("idleconn: no go command on PATH to build wsdirect-node: %w", err)
	}
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = srcDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("idleconn: go %s in %s: %w\n%s", strings.Join(args, " "), srcDir, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("build", "-overlay", ovFile, "-o", filepath.Join(outDir, localcluster.NodeBinary), "./cmd/wsdirect-node"); err != nil {
		return err
	}
	if withAuth {
		return run("build", "-o", filepath.Join(outDir, localcluster.AuthBinary), "./cmd/wsdirect-auth")
	}
	return nil
}

// exportRev writes the tree of git revision rev of the repository at
// repoDir into dst (git archive), without touching the repository's work
// tree or worktrees.
func exportRev(ctx context.Context, repoDir, rev, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	archive := exec.CommandContext(ctx, "git", "-C", repoDir, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dst)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var aerr, terr strings.Builder
	archive.Stderr, untar.Stderr = &aerr, &terr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return fmt.Errorf("idleconn: git archive %s: %w: %s", rev, err, strings.TrimSpace(aerr.String()))
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("idleconn: untar %s: %w: %s", rev, err, strings.TrimSpace(terr.String()))
	}
	return nil
}
