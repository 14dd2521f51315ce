/**
 * The one error family of the service. Each error carries its HTTP status and a message meant for
 * the user; the HTTP layer shows 4xx messages as they are and logs 5xx details only.
 */
export abstract class DomainError extends Error {
  abstract readonly status: 400 | 401 | 403 | 404 | 409;
  /** One entry per problem, each naming the field or thing it is about. */
  readonly reasons: string[];

  constructor(reasons: string | string[], options?: ErrorOptions) {
    const list = Array.isArray(reasons) ? reasons : [reasons];
    super(list.join('; '), options);
    this.name = new.target.name;
    this.reasons = list;
  }
}

/** Bad input: each reason names the field and the rule it breaks. */
export class ValidationError extends DomainError {
  readonly status = 400;
}

/** Nobody signed in: the request carries no credentials that name a user. */
export class UnauthorizedError extends DomainError {
  readonly status = 401;
}

/** A link that was tampered with or has expired. */
export class ForbiddenError extends DomainError {
  readonly status = 403;
}

/** Unknown cluster, node, run or file. */
export class NotFoundError extends DomainError {
  readonly status = 404;
}

/** The target is busy with another run. */
export class ConflictError extends DomainError {
  readonly status = 409;
}
