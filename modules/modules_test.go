// Package modules_test checks the Terraform modules under modules/ and the
// configurations under examples/ without initialising them (the nlb module
// needs the hashicorp/aws provider, which cannot be downloaded here): it
// parses every file with hashicorp/hcl/v2 and checks that every reference
// resolves to something declared, every output and variable is complete, and
// the files are in `terraform fmt` style. The cluster and haproxy modules
// are also planned and applied against ec2sim by the provider's
// TestAccModules.
package modules_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// module is what one directory of .tf files declares.
type module struct {
	dir        string
	files      map[string]*hclsyntax.Body
	variables  map[string]*hclsyntax.Block
	locals     map[string]bool
	resources  map[string]bool // "type.name"
	data       map[string]bool // "type.name"
	modules    map[string]*hclsyntax.Block
	outputs    map[string]*hclsyntax.Block
	providers  map[string]bool // required_providers local names
	configured []string        // provider blocks
}

func loadModule(t *testing.T, dir string) *module {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("%s: no .tf files (%v)", dir, err)
	}
	sort.Strings(paths)
	m := &module{
		dir: dir, files: map[string]*hclsyntax.Body{}, variables: map[string]*hclsyntax.Block{},
		locals: map[string]bool{}, resources: map[string]bool{}, data: map[string]bool{},
		modules: map[string]*hclsyntax.Block{}, outputs: map[string]*hclsyntax.Block{}, providers: map[string]bool{},
	}
	p := hclparse.NewParser()
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", path, diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		m.files[path] = body
		for _, b := range body.Blocks {
			switch b.Type {
			case "variable":
				m.declare(t, m.variables, b, b.Labels[0])
			case "output":
				m.declare(t, m.outputs, b, b.Labels[0])
			case "module":
				m.declare(t, m.modules, b, b.Labels[0])
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = true
			case "data":
				m.data[b.Labels[0]+"."+b.Labels[1]] = true
			case "locals":
				for name := range b.Body.Attributes {
					if m.locals[name] {
						t.Errorf("%s: local %q declared twice", dir, name)
					}
					m.locals[name] = true
				}
			case "terraform":
				for _, tb := range b.Body.Blocks {
					if tb.Type == "required_providers" {
						for name := range tb.Body.Attributes {
							m.providers[name] = true
						}
					}
				}
			case "provider":
				m.configured = append(m.configured, b.Labels[0])
			}
		}
	}
	return m
}

func (m *module) declare(t *testing.T, into map[string]*hclsyntax.Block, b *hclsyntax.Block, name string) {
	if _, dup := into[name]; dup {
		t.Errorf("%s: %s %q declared twice", m.dir, b.Type, name)
	}
	into[name] = b
}

// expressions calls fn for every expression in body and its nested blocks,
// with the iterators of the dynamic blocks around it (their name, or their
// iterator attribute, stands for the element inside content).
func expressions(body *hclsyntax.Body, fn func(e hclsyntax.Expression, iterators map[string]bool)) {
	walkExpressions(body, map[string]bool{}, fn)
}

func walkExpressions(body *hclsyntax.Body, iterators map[string]bool, fn func(hclsyntax.Expression, map[string]bool)) {
	for _, a := range body.Attributes {
		fn(a.Expr, iterators)
	}
	for _, b := range body.Blocks {
		inner := iterators
		if b.Type == "dynamic" && len(b.Labels) == 1 {
			name := b.Labels[0]
			if it, ok := b.Body.Attributes["iterator"]; ok {
				if tr, diags := hcl.AbsTraversalForExpr(it.Expr); !diags.HasErrors() && len(tr) == 1 {
					name = tr.RootName()
				}
			}
			// for_each is evaluated outside; the iterator exists in content.
			for attrName, a := range b.Body.Attributes {
				if attrName != "iterator" {
					fn(a.Expr, iterators)
				}
			}
			inner = map[string]bool{name: true}
			for k := range iterators {
				inner[k] = true
			}
			for _, cb := range b.Body.Blocks {
				walkExpressions(cb.Body, inner, fn)
			}
			continue
		}
		walkExpressions(b.Body, inner, fn)
	}
}

// checkRefs reports every reference in the module that names something
// not declared, and returns the variables that are used.
func (m *module) checkRefs(t reporter) map[string]bool {
	used := map[string]bool{}
	for _, path := range sortedKeys(m.files) {
		for _, top := range m.files[path].Blocks {
			if top.Type == "terraform" {
				continue
			}
			// A variable's own validation does not count as a use.
			into := used
			if top.Type == "variable" {
				into = map[string]bool{}
			}
			body := top.Body
			if top.Type == "variable" {
				// "type" holds a type expression (string, list(...)), not
				// references.
				body = &hclsyntax.Body{Blocks: top.Body.Blocks, Attributes: hclsyntax.Attributes{}}
				for name, a := range top.Body.Attributes {
					if name != "type" {
						body.Attributes[name] = a
					}
				}
			}
			expressions(body, func(e hclsyntax.Expression, iterators map[string]bool) {
				for _, tr := range e.Variables() {
					if iterators[tr.RootName()] {
						continue
					}
					if err := m.resolve(tr, into); err != "" {
						rng := tr.SourceRange()
						t.Errorf("%s:%d: %s", path, rng.Start.Line, err)
					}
				}
			})
		}
	}
	return used
}

func (m *module) resolve(tr hcl.Traversal, used map[string]bool) string {
	root := tr.RootName()
	attr := func(i int) string {
		if len(tr) <= i {
			return ""
		}
		if a, ok := tr[i].(hcl.TraverseAttr); ok {
			return a.Name
		}
		return ""
	}
	switch root {
	case "var":
		name := attr(1)
		if _, ok := m.variables[name]; !ok {
			return "var." + name + " is not declared"
		}
		used[name] = true
	case "local":
		if !m.locals[attr(1)] {
			return "local." + attr(1) + " is not declared"
		}
	case "data":
		if !m.data[attr(1)+"."+attr(2)] {
			return "data." + attr(1) + "." + attr(2) + " is not declared"
		}
	case "module":
		if _, ok := m.modules[attr(1)]; !ok {
			return "module." + attr(1) + " is not declared"
		}
	case "path", "terraform", "count", "each", "self":
	default:
		if !m.resources[root+"."+attr(1)] {
			return "reference to undeclared " + root + "." + attr(1)
		}
		provider, _, _ := strings.Cut(root, "_")
		if !m.providers[provider] {
			return "resource type " + root + " needs provider " + provider + " in required_providers"
		}
	}
	return ""
}

func moduleDirs(t *testing.T) []string {
	dirs, err := filepath.Glob("*/versions.tf")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		out = append(out, filepath.Dir(d))
	}
	for _, want := range []string{"cluster", "haproxy", "nlb"} {
		found := false
		for _, d := range out {
			found = found || d == want
		}
		if !found {
			t.Errorf("module %s is missing", want)
		}
	}
	return out
}

func TestModulesDeclareWhatTheyUse(t *testing.T) {
	for _, dir := range moduleDirs(t) {
		t.Run(dir, func(t *testing.T) {
			m := loadModule(t, dir)
			if len(m.providers) == 0 {
				t.Error("no terraform { required_providers { ... } } block")
			}
			if len(m.configured) > 0 {
				t.Errorf("a reusable module must not configure providers; it has provider blocks for %v", m.configured)
			}
			for _, r := range sortedKeys(m.resources) {
				provider, _, _ := strings.Cut(r, "_")
				if !m.providers[provider] {
					t.Errorf("resource %s: provider %q is not in required_providers", r, provider)
				}
			}
			for _, d := range sortedKeys(m.data) {
				provider, _, _ := strings.Cut(d, "_")
				if !m.providers[provider] {
					t.Errorf("data %s: provider %q is not in required_providers", d, provider)
				}
			}
			used := m.checkRefs(t)
			for name, b := range m.variables {
				if !used[name] {
					t.Errorf("variable %q is declared but never used", name)
				}
				for _, a := range []string{"description", "type"} {
					if _, ok := b.Body.Attributes[a]; !ok {
						t.Errorf("variable %q has no %s", name, a)
					}
				}
			}
			if len(m.outputs) == 0 {
				t.Error("module has no outputs")
			}
			for name, b := range m.outputs {
				if _, ok := b.Body.Attributes["value"]; !ok {
					t.Errorf("output %q has no value", name)
				}
				if _, ok := b.Body.Attributes["description"]; !ok {
					t.Errorf("output %q has no description", name)
				}
			}
		})
	}
}

// TestModuleRefCheckCatchesMistakes proves the checks above can fail.
func TestModuleRefCheckCatchesMistakes(t *testing.T) {
	dir := t.TempDir()
	src := `
terraform {
  required_providers {
    wsdirect = { source = "wsdirect/wsdirect" }
  }
}
variable "a" {
  description = "a"
  type        = string
}
resource "wsdirect_node" "n" {
  ami = var.a
  dynamic "wait_for_ready" {
    for_each = [var.a]
    content {
      url     = wait_for_ready.value
      timeout = other_block.value
    }
  }
  dynamic "tag" {
    for_each = [var.a]
    iterator = t
    content {
      key = t.key
    }
  }
}
output "ok" {
  description = "ok"
  value       = [for x in [1] : x + length(wsdirect_node.n.id)]
}
output "bad" {
  description = "bad"
  value       = "${var.missing}-${local.nope}-${wsdirect_node.other.id}-${aws_lb.x.arn}-${data.wsdirect_nodes.d.ids[0]}"
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m := loadModule(t, dir)
	m.checkRefs(rec)
	want := []string{"var.missing is not declared", "local.nope is not declared", "undeclared wsdirect_node.other",
		"undeclared aws_lb.x", "data.wsdirect_nodes.d is not declared", "undeclared other_block.value"}
	all := strings.Join(rec.errors, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("the reference check missed %q; it reported:\n%s", w, all)
		}
	}
	if len(rec.errors) != len(want) {
		t.Errorf("got %d problems, want %d (the for-expression and dynamic-block iterators must not count):\n%s", len(rec.errors), len(want), all)
	}
}

// reporter is the part of *testing.T the checks report through.
type reporter interface {
	Errorf(format string, args ...any)
}

// recorder captures reports, to test the checks themselves.
type recorder struct{ errors []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestExamplesUseModuleCorrectly checks that examples/complete passes
// exactly the cluster module's variables and every required one.
func TestExamplesUseModuleCorrectly(t *testing.T) {
	cluster := loadModule(t, "cluster")
	ex := loadModule(t, filepath.Join("..", "examples", "complete"))
	ex.checkRefs(t)
	found := false
	for name, b := range ex.modules {
		src, diags := b.Body.Attributes["source"].Expr.Value(nil)
		if diags.HasErrors() || src.AsString() != "../../modules/cluster" {
			continue
		}
		found = true
		for arg := range b.Body.Attributes {
			if arg == "source" || arg == "providers" || arg == "depends_on" || arg == "count" || arg == "for_each" {
				continue
			}
			if _, ok := cluster.variables[arg]; !ok {
				t.Errorf("module %q passes %q, which modules/cluster does not declare", name, arg)
			}
		}
		for v, vb := range cluster.variables {
			if _, hasDefault := vb.Body.Attributes["default"]; !hasDefault {
				if _, given := b.Body.Attributes[v]; !given {
					t.Errorf("module %q does not pass the required variable %q", name, v)
				}
			}
		}
	}
	if !found {
		t.Fatal("examples/complete does not use ../../modules/cluster")
	}
}

// TestExamplesParse parses every .tf file under examples/.
func TestExamplesParse(t *testing.T) {
	p := hclparse.NewParser()
	n := 0
	err := filepath.WalkDir(filepath.Join("..", "examples"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".tf") {
			return err
		}
		n++
		if _, diags := p.ParseHCLFile(path); diags.HasErrors() {
			t.Errorf("%s: %s", path, diags.Error())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 9 {
		t.Errorf("found %d example .tf files, want at least 9", n)
	}
}

// TestTerraformFmt runs the real `terraform fmt -check` over modules/ and
// examples/. Without terraform it skips, except under CI.
func TestTerraformFmt(t *testing.T) {
	bin := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if bin == "" {
		if p, err := filepath.Abs(filepath.Join("..", "bin", "terraform")); err == nil {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		p, err := exec.LookPath("terraform")
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("CI is set but no terraform binary was found (set TF_ACC_TERRAFORM_PATH or build bin/terraform)")
			}
			t.Skip("terraform not found")
		}
		bin = p
	}
	cli := filepath.Join(t.TempDir(), "terraformrc")
	if err := os.WriteFile(cli, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{".", filepath.Join("..", "examples")} {
		var out bytes.Buffer
		cmd := exec.Command(bin, "fmt", "-no-color", "-check", "-recursive", "-diff", dir)
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cli, "CHECKPOINT_DISABLE=1")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("terraform fmt -check %s: %v\n%s", dir, err, out.String())
		}
	}
}
