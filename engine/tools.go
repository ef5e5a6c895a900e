//go:build tools

// Package engine only records which Go programs the setup builds.
package engine

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
