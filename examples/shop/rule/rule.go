// Package rule is how the shop's Deciders reject commands. Each business
// rule is a sentinel error that tests match with errors.Is; a rejection
// wraps it with the reason, about this command, that a person reads.
package rule

import "fmt"

// Rejection is a command rejected because accepting it would break Rule.
type Rejection struct {
	// Rule is the broken rule, a sentinel error of the aggregate's package.
	Rule error
	// Reason says what about the command and the state breaks the rule.
	Reason string
}

// Reject returns a *Rejection of rule, its reason formatted as by
// fmt.Sprintf.
func Reject(rule error, format string, args ...any) error {
	return &Rejection{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Error returns the reason followed by the rule.
func (r *Rejection) Error() string { return r.Reason + ": " + r.Rule.Error() }

// Unwrap returns the rule, so that errors.Is matches it.
func (r *Rejection) Unwrap() error { return r.Rule }
