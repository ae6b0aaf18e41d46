package xdsresource_test

import (
	"errors"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
)

func asValidationError(err error, target **xdsresource.ValidationError) bool {
	return errors.As(err, target)
}
