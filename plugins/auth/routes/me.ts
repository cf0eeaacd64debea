/** The signed-in user's own account and devices. */
import { type PluginContext, route, Type } from '../../../server/plugins/api.js';
import type { AuthConfig } from '../config.js';
import type { Profile } from '../profile.js';
import { asUser } from './principal.js';
import { DeviceId, DeviceView, UserView } from './schemas.js';

export const me = route({
  id: 'auth.me',
  method: 'GET',
  path: '/me',
  summary: 'The signed-in account',
  auth: 'user',
  responses: { 200: { description: 'The account.', schema: UserView } },
  errors: ['IQP_E_TOKEN_INVALID'],
});

export const deleteMe = route({
  id: 'auth.deleteMe',
  method: 'DELETE',
  path: '/me',
  summary: 'Delete the signed-in account and, through the user.deleted hook, every plugin’s data for it',
  auth: 'user',
  responses: { 204: { description: 'Deleted.' } },
  errors: ['IQP_E_TOKEN_INVALID'],
});

export const addDevice = route({
  id: 'auth.addDevice',
  method: 'POST',
  path: '/devices',
  summary: 'Register a device for the signed-in account',
  auth: 'user',
  body: Type.Object(
    { device_id: Type.Optional(DeviceId), name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })), platform: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })) },
    { additionalProperties: false },
  ),
  responses: { 201: { description: 'Registered (or already this account’s).', schema: DeviceView } },
  errors: ['IQP_E_DEVICE_FOREIGN', 'IQP_E_TOKEN_INVALID'],
});

export const listDevices = route({
  id: 'auth.listDevices',
  method: 'GET',
  path: '/devices',
  summary: 'The signed-in account’s devices, with when each was last seen',
  auth: 'user',
  responses: { 200: { description: 'Devices, oldest first.', schema: Type.Object({ devices: Type.Array(DeviceView) }, { additionalProperties: false }) } },
  errors: ['IQP_E_TOKEN_INVALID'],
});

export const removeDevice = route({
  id: 'auth.removeDevice',
  method: 'DELETE',
  path: '/devices/{id}',
  summary: 'Remove a device: every session issued to it ends',
  auth: 'user',
  params: Type.Object({ id: DeviceId }, { additionalProperties: false }),
  responses: { 204: { description: 'Removed.' } },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_TOKEN_INVALID'],
});

export function meRoutes(ctx: PluginContext<AuthConfig>, profile: () => Profile): void {
  ctx.routes.route(me, async ({ principal }) => profile().me(asUser(ctx, principal)));
  ctx.routes.route(deleteMe, async ({ principal }) => {
    await profile().deleteMe(asUser(ctx, principal));
    return ctx.reply(204);
  });
  ctx.routes.route(addDevice, async ({ principal, body }) => ctx.reply(201, await profile().addDevice(asUser(ctx, principal), body)));
  ctx.routes.route(listDevices, async ({ principal }) => ({ devices: await profile().devices(asUser(ctx, principal)) }));
  ctx.routes.route(removeDevice, async ({ principal, params }) => {
    if (!(await profile().removeDevice(asUser(ctx, principal), params.id))) throw ctx.error('IQP_E_NOT_FOUND', 'No such device on this account.');
    return ctx.reply(204);
  });
}
