// Package config holds the one rule the allocator's Configs (allocator,
// kube, autoscale) share for their defaults: a number that is zero, or
// nonsense below it, is not set. (A string is not set when empty: those
// use cmp.Or.)
package config

// OrDefault sets *v to d unless *v is positive.
func OrDefault[T ~int | ~int32 | ~int64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
