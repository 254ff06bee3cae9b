//go:build !linux

package srcbind

import "syscall"

type syscallRawConn = syscall.RawConn

const wantOption = 0

func bindNoPortOption(syscall.RawConn) (int, error) { return 0, nil }
