package call

import "context"

type attachmentsKey struct{}

// WithAttachments returns a context carrying outgoing attachments; a
// consumer sends them with every call made with the context.
func WithAttachments(ctx context.Context, a Attachments) context.Context {
	return context.WithValue(ctx, attachmentsKey{}, a)
}

// AttachmentsFrom returns the attachments stored by WithAttachments, or nil.
func AttachmentsFrom(ctx context.Context) Attachments {
	a, _ := ctx.Value(attachmentsKey{}).(Attachments)
	return a
}
