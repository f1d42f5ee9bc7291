/**
 * What every tokenmeter plugin does to its own encapsulated scope: Fastify's body parsers
 * off, so the engine reads the body itself after identify, within maxBodyBytes and the
 * shape limits (an unknown caller is refused before its upload is read).
 */
import type { FastifyInstance } from 'fastify';

export function leaveBodiesUnread(scope: FastifyInstance): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
}
