import type { Principal } from '../gateway/request-types.js';

/** Who owns a resource and what a policy condition may know about it. */
export interface ResourceOwner {
  tenant: string;
  attributes?: Principal['attributes'];
}

/** Finds a resource by id; undefined when there is none (the caller then answers 404). */
export type ResourceResolver = (id: string) => Promise<ResourceOwner | undefined>;

/**
 * Resource type (`x-weir-authz.resource`) to the resolver that knows its owner. Each capability
 * registers its own at boot (datasets, websites, exports, ...); a type nobody registered resolves
 * nothing, so its ids answer 404 rather than being authorized blind.
 */
export class ResourceResolvers {
  readonly #byType = new Map<string, ResourceResolver>();

  register(type: string, resolver: ResourceResolver): this {
    if (this.#byType.has(type)) throw new Error(`A resolver for resource type "${type}" is already registered`);
    this.#byType.set(type, resolver);
    return this;
  }

  /** Replaces a type's resolver (tests, and fixtures standing in for a capability). */
  override(type: string, resolver: ResourceResolver): this {
    this.#byType.set(type, resolver);
    return this;
  }

  async resolve(type: string, id: string): Promise<ResourceOwner | undefined> {
    return this.#byType.get(type)?.(id);
  }
}
