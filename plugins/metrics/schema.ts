import { z } from 'zod';

export const MetricsOptions = z.object({}).prefault({});
export type MetricsOptions = z.infer<typeof MetricsOptions>;
