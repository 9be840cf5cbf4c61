package control_test

import "golang.org/x/sys/unix"

func setUmask(m int) int { return unix.Umask(m) }
