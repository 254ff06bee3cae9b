// Package tflocal runs Terraform against the local cloud the way a user would: it builds the
// binaries and the provider from this tree, installs the provider in a filesystem mirror (no
// dev_overrides), starts wsdirect-localcloud as a process, and drives the real terraform
// binary through terraform-exec. Demo is the `make demo-terraform` story; the tests apply
// modules/cluster and every example under examples/ with it.
package tflocal
