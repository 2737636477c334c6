package pipaauth

import (
	"fmt"
	"slices"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// responseModeFormPost is Config.ResponseMode's one value besides "".
const responseModeFormPost = "form_post"

// checkResponseMode checks Config.ResponseMode against the discovery
// document d and returns, for form_post, the origins PiPA's page may post
// the response from: the issuer's and the authorization endpoint's.
func (a *Auth) checkResponseMode(d discovery, authURL string) (bool, []string, error) {
	if a.cfg.ResponseMode != responseModeFormPost {
		return false, nil, nil
	}
	if len(d.ResponseModes) > 0 && !slices.Contains(d.ResponseModes, responseModeFormPost) {
		return false, nil, fmt.Errorf("%w: ResponseMode is form_post but the provider's response_modes_supported is %q: leave ResponseMode empty", errs.ErrConfig, d.ResponseModes)
	}
	origins := []string{publicOrigin(a.cfg.Issuer)}
	if o := publicOrigin(authURL); o != origins[0] {
		origins = append(origins, o)
	}
	return true, origins, nil
}
