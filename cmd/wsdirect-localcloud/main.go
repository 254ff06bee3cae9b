// Command wsdirect-localcloud runs a local cloud: the EC2 and STS APIs on a loopback
// endpoint, and every instance that reaches "running" booted as local processes from its
// cloud-init user data (package internal/localcloud, docs/localcloud.md). Point Terraform at it
// and `terraform apply` runs the real cluster on this machine.
//
//	wsdirect-localcloud [serve] [flags]        run until SIGINT or SIGTERM (then stop every instance)
//	wsdirect-localcloud env [-work-dir D]      print the shell exports that point AWS SDKs (Terraform) at it
//	wsdirect-localcloud status [-work-dir D]   list instances, their boot and their units
//	wsdirect-localcloud kill [-unit U] <id>    fault injection: SIGKILL an instance (or one unit)
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  wsdirect-localcloud [serve] [flags]       run the local cloud (wsdirect-localcloud serve -h for flags)
  wsdirect-localcloud env [-work-dir D]     print shell exports for Terraform and other AWS SDK users
  wsdirect-localcloud status [-work-dir D]  list instances, their boot and their units
  wsdirect-localcloud kill [-work-dir D] [-unit U] <instance-id>
                                            SIGKILL every process of an instance (a crash), or of one unit`

func run(args []string, stdout, stderr io.Writer) int {
	sub := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		sub, args = args[0], args[1:]
	}
	var err error
	switch sub {
	case "serve":
		err = serve(args, stdout, stderr)
	case "env":
		err = printEnv(args, stdout, stderr)
	case "status":
		err = status(args, stdout, stderr)
	case "kill":
		err = kill(args, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "wsdirect-localcloud: unknown command %q\n%s\n", sub, usage)
		return 2
	}
	if err == errUsage {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "wsdirect-localcloud:", err)
		return 1
	}
	return 0
}
