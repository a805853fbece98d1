//go:build !unix

package secretfile

const noFollow = 0

func renameNoReplace(tmp, target string) error { return linkInstead(tmp, target) }
