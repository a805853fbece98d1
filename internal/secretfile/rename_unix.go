//go:build unix && !linux

package secretfile

import "syscall"

const noFollow = syscall.O_NOFOLLOW

func renameNoReplace(tmp, target string) error { return linkInstead(tmp, target) }
