import { z } from 'zod';

export const ValidationOptions = z
  .object({
    /** Check responses against the spec too (on in development and tests; config VALIDATE_RESPONSES). */
    validateResponses: z.boolean().default(false),
    /** Refuse query parameters the operation doesn't declare. */
    allowUnknownQueryParameters: z.boolean().default(false),
  })
  .prefault({});

export type ValidationOptions = z.infer<typeof ValidationOptions>;
