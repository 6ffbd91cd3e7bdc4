export { createMockSyncServer, type InjectedFault, type MockSyncServer, type MockSyncServerOptions } from './mockSyncServer'
export { createContractModel, type ContractModel, type ModelAnswer } from './contractModel'
export { type MockPullFault, type MockRealtime } from './mockRealtime'
export { CloseCode, CLOSE_REASONS, REALTIME_PROTOCOL, type ClientMessage, type ServerMessage } from '../remote/realtime/messages'
