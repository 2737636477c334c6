package pipaauth

import (
	"testing"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// The Reason constants are literal strings (so go doc shows them); the
// codes set where errors are created must be the same strings.
func TestReasonsMatchErrorCodes(t *testing.T) {
	for reason, code := range map[string]string{
		ReasonIssuerMismatch:  errs.CodeIssuerMismatch,
		ReasonNonceMismatch:   errs.CodeNonceMismatch,
		ReasonExchangeRefused: errs.CodeExchangeRefused,
		ReasonNoRefreshToken:  errs.CodeNoRefreshToken,
		ReasonIDTokenExpired:  errs.CodeIDTokenExpired,
		ReasonStepUpNotRecent: errs.CodeStepUpNotRecent,
		ReasonStepUpOtherUser: errs.CodeStepUpOtherUser,
		ReasonUnreadable:      errs.CodeUnreadable,
		ReasonUserInfoInvalid: errs.CodeUserInfoInvalid,
		ReasonKeysUnavailable: errs.CodeKeysUnavailable,
		ReasonClaimsTooLarge:  errs.CodeClaimsTooLarge,
	} {
		if reason != code {
			t.Errorf("Reason %q differs from the error code %q", reason, code)
		}
	}
}
