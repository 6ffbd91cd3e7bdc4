export { createMockSyncServer, type InjectedFault, type MockSyncServer, type MockSyncServerOptions } from './mockSyncServer'
export { createContractModel, type ContractModel, type ModelAnswer } from './contractModel'
