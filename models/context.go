package models

import "context"

type actorKey struct{}

// WithActor returns ctx carrying the actor of the request being served. The
// web layer sets it once authentication has resolved who is calling;
// handlers read it with ActorFrom.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor set by WithActor, and whether there is one.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}
