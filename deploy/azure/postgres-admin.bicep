// An Entra ID administrator of the PostgreSQL server: a module because its name is the principal's
// object id, which main.bicep only knows once the identity exists.

@description('The flexible server.')
param serverName string

@description('Object id of the user, group or service principal.')
param principalId string

@description('Its name, which is also its PostgreSQL role (the user name in DATABASE_URL).')
param principalName string

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' existing = {
  name: serverName
}

resource administrator 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: principalId
  properties: {
    principalType: principalType
    principalName: principalName
    tenantId: tenant().tenantId
  }
}
